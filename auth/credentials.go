package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// LoadCredentialsFile reads access keys from path. Two formats are accepted:
//
//   - one key per line: ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID
//     (white-space separated; '#' starts a comment; blank lines are skipped);
//   - the AWS shared-credentials INI format: a [section] per key with
//     aws_access_key_id, aws_secret_access_key and optionally aws_account_id
//     (without it the key acts for Config.DefaultAccount).
//
// A file whose first significant line starts with '[' is read as INI.
// Errors name the file and line but never quote a secret.
func LoadCredentialsFile(path string) ([]Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	if isINI(data) {
		return parseINICredentials(path, data)
	}
	return parseLineCredentials(path, data)
}

func isINI(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		return line[0] == '['
	}
	return false
}

func parseLineCredentials(path string, data []byte) ([]Credential, error) {
	var creds []Credential
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(stripComment(sc.Text()))
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID, got %d fields", path, n, len(f))
		}
		c := Credential{AccessKeyID: f[0], SecretAccessKey: f[1], Account: f[2]}
		if err := checkCredential(c, true); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if prev, dup := seen[c.AccessKeyID]; dup {
			return nil, fmt.Errorf("%s:%d: access key %s is already defined on line %d", path, n, c.AccessKeyID, prev)
		}
		seen[c.AccessKeyID] = n
		creds = append(creds, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

func parseINICredentials(path string, data []byte) ([]Credential, error) {
	type section struct {
		name string
		line int
		c    Credential
	}
	var sections []*section
	var cur *section
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: section header must end with ']'", path, n)
			}
			cur = &section{name: strings.TrimSpace(line[1 : len(line)-1]), line: n}
			sections = append(sections, cur)
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key = value", path, n)
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: setting outside a [section]", path, n)
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_access_key_id":
			cur.c.AccessKeyID = val
		case "aws_secret_access_key":
			cur.c.SecretAccessKey = val
		case "aws_account_id":
			cur.c.Account = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var creds []Credential
	seen := map[string]int{}
	for _, s := range sections {
		if err := checkCredential(s.c, false); err != nil {
			return nil, fmt.Errorf("%s:%d: [%s]: %w", path, s.line, s.name, err)
		}
		if prev, dup := seen[s.c.AccessKeyID]; dup {
			return nil, fmt.Errorf("%s:%d: [%s]: access key %s is already defined in the section on line %d", path, s.line, s.name, s.c.AccessKeyID, prev)
		}
		seen[s.c.AccessKeyID] = s.line
		creds = append(creds, s.c)
	}
	return creds, nil
}

// stripComment drops a '#' comment: one that starts the line or follows
// white space, so a secret may still contain '#'.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// checkCredential validates one key; the account may be empty only when
// !needAccount.
func checkCredential(c Credential, needAccount bool) error {
	switch {
	case c.AccessKeyID == "":
		return fmt.Errorf("missing access key id")
	case !printable(c.AccessKeyID) || strings.Contains(c.AccessKeyID, "/"):
		return fmt.Errorf("access key id %q: want visible characters other than '/'", c.AccessKeyID)
	case c.SecretAccessKey == "":
		return fmt.Errorf("access key %s: missing secret access key", c.AccessKeyID)
	case c.Account == "" && !needAccount:
		return nil
	case !isAccount(c.Account):
		return fmt.Errorf("access key %s: account id %q: want 12 digits", c.AccessKeyID, c.Account)
	}
	return nil
}
