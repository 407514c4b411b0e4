package cql

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxDepth bounds nesting (parentheses and not), so a hostile expression cannot
// exhaust the stack.
const MaxDepth = 64

// Parse parses a cluster query language expression.
//
// Grammar (keywords and operator words are case-insensitive; subjects are
// spelled as ECS documents them):
//
//	expr       = and { ("or" | "||") and }
//	and        = unary { ("and" | "&&") unary }
//	unary      = ("not" | "!") unary | "(" expr ")" | comparison
//	comparison = subject op [argument]
//	argument   = value | "[" value { "," value } "]"
//	value      = bare-word | 'quoted' | "quoted"
func Parse(s string) (*Expr, error) {
	p := &parser{lx: lexer{src: s}, src: s}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, errorf(0, "empty expression")
	}
	root, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		if p.tok.kind == tRParen {
			return nil, errorf(p.tok.pos, "unbalanced ')'")
		}
		return nil, errorf(p.tok.pos, "expected and, or or the end of the expression, found %s", p.tok.describe())
	}
	return &Expr{src: s, root: root, groups: p.groups, attrs: p.attrs, onlyAttrs: !p.others}, nil
}

type parser struct {
	lx     lexer
	src    string
	tok    token
	groups bool
	attrs  []string
	others bool // a subject other than attribute:<name> was used
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "the end of the expression"
	case tString:
		return strconv.Quote(t.text)
	default:
		return "'" + t.text + "'"
	}
}

func (t token) isWord(w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

func (p *parser) parseOr(depth int) (node, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.isWord("or") || (p.tok.kind == tOp && p.tok.text == "||") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &orNode{l, r}
	}
	return l, nil
}

func (p *parser) parseAnd(depth int) (node, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.isWord("and") || (p.tok.kind == tOp && p.tok.text == "&&") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		l = &andNode{l, r}
	}
	return l, nil
}

func (p *parser) parseUnary(depth int) (node, error) {
	if depth >= MaxDepth {
		return nil, errorf(p.tok.pos, "expression nested more than %d levels deep", MaxDepth)
	}
	switch {
	case p.tok.isWord("not") || (p.tok.kind == tOp && p.tok.text == "!"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case p.tok.kind == tLParen:
		open := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			if p.tok.kind == tEOF {
				return nil, errorf(open, "unbalanced '(': no matching ')'")
			}
			return nil, errorf(p.tok.pos, "expected ')', and or or, found %s", p.tok.describe())
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return x, nil
	case p.tok.kind == tWord:
		return p.parseComparison()
	case p.tok.kind == tEOF:
		return nil, errorf(p.tok.pos, "expected a subject (attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt or runningTasksCount) at the end of the expression")
	default:
		return nil, errorf(p.tok.pos, "expected a subject, found %s", p.tok.describe())
	}
}

// parseSubject resolves the current word as a subject.
func (p *parser) parseSubject() (*cmpNode, error) {
	w := p.tok
	if name, ok := strings.CutPrefix(w.text, "attribute:"); ok {
		if name == "" {
			return nil, errorf(w.end, "expected an attribute name after 'attribute:'")
		}
		if i := strings.IndexFunc(name, func(r rune) bool { return !validAttrNameRune(r) }); i >= 0 {
			return nil, errorf(w.pos+len("attribute:")+i, "attribute names may contain letters, digits, '-', '_', '.', '/' and '\\' only")
		}
		if !slices.Contains(p.attrs, name) {
			p.attrs = append(p.attrs, name)
		}
		return &cmpNode{subject: SubjectAttribute, attr: name}, nil
	}
	if s, ok := subjectNames[w.text]; ok {
		p.others = true
		if s == SubjectTaskGroup {
			p.groups = true
		}
		return &cmpNode{subject: s}, nil
	}
	for name := range subjectNames {
		if strings.EqualFold(name, w.text) {
			return nil, errorf(w.pos, "unknown subject '%s' (subjects are case-sensitive: did you mean %s?)", w.text, name)
		}
	}
	if strings.HasPrefix(strings.ToLower(w.text), "attribute:") {
		return nil, errorf(w.pos, "unknown subject '%s' (write attribute: in lowercase)", w.text)
	}
	return nil, errorf(w.pos, "unknown subject '%s': expected attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt or runningTasksCount", w.text)
}

func validAttrNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '-' || r == '_' || r == '.' || r == '/' || r == '\\'
}

// parseOp reads the operator after a subject.
func (p *parser) parseOp(subjectEnd int, subject string) (Op, int, error) {
	t := p.tok
	switch t.kind {
	case tOp:
		if t.text == "!" {
			// "!exists" and "!in" are written with a leading bang.
			if err := p.advance(); err != nil {
				return 0, 0, err
			}
			switch {
			case p.tok.isWord("exists"):
				return OpNotExists, t.pos, p.advance()
			case p.tok.isWord("in"):
				return OpNotIn, t.pos, p.advance()
			}
			return 0, 0, errorf(t.pos, "expected !exists or !in after %s", subject)
		}
		if op, ok := symbolOps[t.text]; ok {
			return op, t.pos, p.afterOp(op)
		}
	case tWord:
		if op, ok := wordOps[strings.ToLower(t.text)]; ok {
			return op, t.pos, p.afterOp(op)
		}
		if strings.EqualFold(t.text, "not") {
			return 0, 0, errorf(t.pos, "expected an operator after %s; write not_in (or !in), not_equals, not_exists or not_matches as one word", subject)
		}
	case tEOF:
		return 0, 0, errorf(subjectEnd, "expected an operator after %s", subject)
	}
	return 0, 0, errorf(t.pos, "expected an operator after %s, found %s", subject, t.describe())
}

func (p *parser) parseComparison() (node, error) {
	subjTok := p.tok
	n, err := p.parseSubject()
	if err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	op, opPos, err := p.parseOp(subjTok.end, subjTok.text)
	if err != nil {
		return nil, err
	}
	n.op = op
	if !slices.Contains(validOps[n.subject], op) {
		names := make([]string, 0, len(validOps[n.subject]))
		for _, o := range validOps[n.subject] {
			names = append(names, o.String())
		}
		return nil, errorf(opPos, "operator %s is not valid for %s (valid: %s)", op, subjTok.text, strings.Join(names, ", "))
	}
	switch op {
	case OpExists, OpNotExists:
		return n, nil
	case OpIn, OpNotIn:
		if err := p.parseList(n, subjTok.text); err != nil {
			return nil, err
		}
	case OpMatches, OpNotMatches:
		if err := p.parsePattern(n, subjTok.text); err != nil {
			return nil, err
		}
		return n, nil
	default:
		v, err := p.parseValue(subjTok.text, op.String())
		if err != nil {
			return nil, err
		}
		n.strs = []string{v.text}
		if err := n.typeArgs([]token{v}); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// parseValue reads one literal value.
func (p *parser) parseValue(subject, after string) (token, error) {
	t := p.tok
	if t.kind != tWord && t.kind != tString {
		at := t.pos
		if t.kind == tEOF {
			at = len(p.src)
		}
		return token{}, errorf(at, "expected a value after %s %s, found %s", subject, after, t.describe())
	}
	return t, p.advance()
}

func (p *parser) parseList(n *cmpNode, subject string) error {
	if p.tok.kind != tLBracket {
		return errorf(p.tok.pos, "expected a list such as [a, b] after %s %s, found %s", subject, n.op, p.tok.describe())
	}
	open := p.tok.pos
	if err := p.advance(); err != nil {
		return err
	}
	var vals []token
	for {
		if p.tok.kind == tEOF {
			return errorf(open, "unbalanced '[': no matching ']'")
		}
		v, err := p.parseValue(subject, "in a list")
		if err != nil {
			return err
		}
		vals = append(vals, v)
		n.strs = append(n.strs, v.text)
		if p.tok.kind == tComma {
			if err := p.advance(); err != nil {
				return err
			}
			continue
		}
		if p.tok.kind == tRBracket {
			break
		}
		if p.tok.kind == tEOF {
			return errorf(open, "unbalanced '[': no matching ']'")
		}
		return errorf(p.tok.pos, "expected ',' or ']' in the list, found %s", p.tok.describe())
	}
	if err := p.advance(); err != nil {
		return err
	}
	return n.typeArgs(vals)
}

// afterOp moves past an operator. A pattern is not tokenised like other
// values (it may contain any character), so after matches / not_matches the
// lexer is left where the pattern starts.
func (p *parser) afterOp(op Op) error {
	if op == OpMatches || op == OpNotMatches {
		p.tok = token{kind: tEOF, pos: p.lx.pos, end: p.lx.pos}
		return nil
	}
	return p.advance()
}

// parsePattern reads the argument of matches / not_matches: a Java-style
// regular expression that must match the whole value (Go's RE2 syntax covers
// the common Java forms; back-references and look-arounds are refused).
func (p *parser) parsePattern(n *cmpNode, subject string) error {
	t, ok := p.lx.pattern()
	if !ok {
		if err := p.advance(); err != nil {
			return err
		}
		if p.tok.kind != tString {
			at := p.tok.pos
			if p.tok.kind == tEOF {
				at = len(p.src)
			}
			return errorf(at, "expected a pattern after %s %s", subject, n.op)
		}
		t = p.tok
	}
	if _, err := syntax.Parse(t.text, syntax.Perl); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = fmt.Sprintf("%s: %s", se.Code, se.Expr)
		}
		return errorf(t.pos, "invalid pattern %q: %s", t.text, msg)
	}
	re, err := regexp.Compile(`^(?:` + t.text + `)$`)
	if err != nil {
		return errorf(t.pos, "invalid pattern %q: %v", t.text, err)
	}
	n.re = re
	n.strs = []string{t.text}
	return p.advance()
}

// typeArgs converts the arguments to the subject's type, so a bad date or
// number is a parse error that points at it rather than a silent mismatch.
func (n *cmpNode) typeArgs(vals []token) error {
	for _, v := range vals {
		switch n.subject {
		case SubjectRunningTasksCount:
			x, err := strconv.ParseInt(v.text, 10, 64)
			if err != nil {
				return errorf(v.pos, "runningTasksCount compares whole numbers; %q is not one", v.text)
			}
			n.nums = append(n.nums, x)
		case SubjectAgentVersion:
			ver, ok := parseVersion(v.text)
			if !ok {
				return errorf(v.pos, "agentVersion compares versions such as 1.14.5; %q is not one", v.text)
			}
			n.vers = append(n.vers, ver)
		case SubjectRegisteredAt:
			tm, dayOnly, ok := parseDate(v.text)
			if !ok {
				return errorf(v.pos, "registeredAt compares dates written 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18; %q is none of these", v.text)
			}
			n.times = append(n.times, tm)
			n.dayOnly = dayOnly
		case SubjectAgentConnected:
			if !strings.EqualFold(v.text, "true") && !strings.EqualFold(v.text, "false") {
				return errorf(v.pos, "agentConnected is true or false, not %q", v.text)
			}
		}
	}
	return nil
}

// parseDate accepts the formats ECS documents for registeredAt. A date
// without a time compares by whole (UTC) days.
func parseDate(s string) (time.Time, bool, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, false, true
		}
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true, true
	}
	return time.Time{}, false, false
}

// parseVersion parses a dotted numeric version, with an optional leading v
// and ignoring any suffix after '-' or '+' (1.14.5-beta).
func parseVersion(s string) ([]int64, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return nil, false
	}
	parts := strings.Split(s, ".")
	out := make([]int64, len(parts))
	for i, part := range parts {
		x, err := strconv.ParseInt(part, 10, 64)
		if err != nil || x < 0 {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}
