package cql

import (
	"strings"
)

// tokKind classifies a token. Words are bare runs of text (subjects, keywords
// and unquoted values alike); the parser decides what a word means from where
// it stands, so a value may be spelled like a keyword ("attribute:x == and").
type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tString // quoted: '...' or "..."
	tLParen
	tRParen
	tLBracket
	tRBracket
	tComma
	tOp // one of == != =~ !~ > >= < <= && || !
)

type token struct {
	kind tokKind
	text string // word, unquoted string contents, or operator symbol
	pos  int    // byte offset of the token's first byte
	end  int    // byte offset just past the token
}

// lexer is an on-demand scanner: the parser pulls tokens one at a time and can
// ask for a raw pattern at the current position (regular expressions contain
// brackets and parentheses that are delimiters everywhere else).
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isDelim reports bytes that end a bare word: whitespace, structure and the
// first byte of every symbolic operator.
func isDelim(c byte) bool {
	switch c {
	case '(', ')', '[', ']', ',', '\'', '"', '=', '!', '<', '>', '&', '|', '~':
		return true
	}
	return isSpace(c)
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
}

// next returns the next token.
func (l *lexer) next() (token, error) {
	l.skipSpace()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start, end: start}, nil
	}
	c := l.src[l.pos]
	single := func(k tokKind) (token, error) {
		l.pos++
		return token{kind: k, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
	}
	switch c {
	case '(':
		return single(tLParen)
	case ')':
		return single(tRParen)
	case '[':
		return single(tLBracket)
	case ']':
		return single(tRBracket)
	case ',':
		return single(tComma)
	case '\'', '"':
		return l.quoted()
	}
	if op := l.symbol(); op != "" {
		l.pos += len(op)
		return token{kind: tOp, text: op, pos: start, end: l.pos}, nil
	}
	if c == '=' || c == '&' || c == '|' || c == '~' {
		return token{}, errorf(start, "unexpected %q", string(c))
	}
	for l.pos < len(l.src) && !isDelim(l.src[l.pos]) {
		l.pos++
	}
	return token{kind: tWord, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
}

// symbol returns the symbolic operator at the current position, longest first.
func (l *lexer) symbol() string {
	rest := l.src[l.pos:]
	for _, op := range []string{"==", "!=", "=~", "!~", ">=", "<=", "&&", "||", ">", "<", "!"} {
		if strings.HasPrefix(rest, op) {
			return op
		}
	}
	return ""
}

// quoted scans a single- or double-quoted string; a backslash escapes the
// quote character and itself, and is kept literally before anything else (so
// regular expressions such as '\d+' need no doubling).
func (l *lexer) quoted() (token, error) {
	start := l.pos
	q := l.src[l.pos]
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == q:
			l.pos++
			return token{kind: tString, text: b.String(), pos: start, end: l.pos}, nil
		case c == '\\' && l.pos+1 < len(l.src) && (l.src[l.pos+1] == q || l.src[l.pos+1] == '\\'):
			b.WriteByte(l.src[l.pos+1])
			l.pos += 2
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return token{}, errorf(start, "unterminated string starting with %c", q)
}

// pattern scans the argument of matches / not_matches. A quoted pattern is
// taken as is; a bare one runs to the next whitespace, && or ||, less any closing
// parentheses that the pattern itself did not open (they close the enclosing
// expression, as in "(attribute:ecs.instance-type =~ t2.*)").
func (l *lexer) pattern() (token, bool) {
	l.skipSpace()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{}, false
	}
	if c := l.src[l.pos]; c == '\'' || c == '"' {
		return token{}, false // the caller reads it as a quoted token
	}
	end := l.pos
	for end < len(l.src) && !isSpace(l.src[end]) {
		// "&&" and "||" end a bare pattern too (neither is useful inside one):
		// "attribute:a =~ t2.*&&attribute:b exists" is two comparisons.
		if rest := l.src[end:]; strings.HasPrefix(rest, "&&") || strings.HasPrefix(rest, "||") {
			break
		}
		end++
	}
	text := l.src[start:end]
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\\':
			i++ // an escaped parenthesis does not count
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	for depth < 0 && strings.HasSuffix(text, ")") {
		text = text[:len(text)-1]
		depth++
	}
	if text == "" {
		return token{}, false
	}
	l.pos = start + len(text)
	return token{kind: tWord, text: text, pos: start, end: l.pos}, true
}
