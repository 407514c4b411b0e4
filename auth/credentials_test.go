package auth

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentialsLines(t *testing.T) {
	p := writeFile(t, `# ecsd keys
AKIDONE   secret/one+x  111111111111

	AKIDTWO	sec#ret 222222222222   # trailing comment
#AKIDOFF nope 333333333333
`)
	got, err := LoadCredentialsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Credential{
		{AccessKeyID: "AKIDONE", SecretAccessKey: "secret/one+x", Account: "111111111111"},
		{AccessKeyID: "AKIDTWO", SecretAccessKey: "sec#ret", Account: "222222222222"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"two fields", "A s3cr3t\n", ":1: want ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID, got 2 fields"},
		{"four fields", "\n\nA s3cr3t 111111111111 x\n", ":3: want ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID, got 4 fields"},
		{"bad account", "A s3cr3t 1234\n", ":1: access key A: account id \"1234\": want 12 digits"},
		{"slash in key", "A/B s3cr3t 111111111111\n", ":1: access key id \"A/B\""},
		{"duplicate", "A s1 111111111111\nB s2 111111111111\nA s3 222222222222\n", ":3: access key A is already defined on line 1"},
		{"ini no secret", "[default]\naws_access_key_id = A\n", ":1: [default]: access key A: missing secret access key"},
		{"ini no key", "[p]\naws_secret_access_key = s\n", ":1: [p]: missing access key id"},
		{"ini bad account", "[p]\naws_access_key_id=A\naws_secret_access_key=s\naws_account_id=x\n", "[p]: access key A: account id \"x\""},
		{"ini garbage", "[p]\nnot a setting\n", ":2: want key = value"},
		{"ini bad header", "[p\n", ":1: section header"},
		{"ini duplicate", "[a]\naws_access_key_id=A\naws_secret_access_key=s\n[b]\naws_access_key_id=A\naws_secret_access_key=t\n", ":4: [b]: access key A is already defined in the section on line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := LoadCredentialsFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("error %v, want %s%s", err, p, tc.want)
			}
			for _, secret := range []string{"s3cr3t", "s1", "s2", "s3"} {
				if strings.Contains(err.Error(), " "+secret) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
		})
	}
	if _, err := LoadCredentialsFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestLoadCredentialsINI(t *testing.T) {
	p := writeFile(t, `; shared credentials
[default]
aws_access_key_id = AKIDDEF
aws_secret_access_key = def/secret
aws_account_id = 444444444444

[other]
# no account: the default account
AWS_ACCESS_KEY_ID=AKIDOTHER
aws_secret_access_key=other
region = us-west-2
`)
	got, err := LoadCredentialsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Credential{
		{AccessKeyID: "AKIDDEF", SecretAccessKey: "def/secret", Account: "444444444444"},
		{AccessKeyID: "AKIDOTHER", SecretAccessKey: "other"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	v, err := New(Config{Mode: Strict, Credentials: got, DefaultAccount: "555555555555"})
	if err != nil {
		t.Fatal(err)
	}
	if v.keys["AKIDOTHER"].Account != "555555555555" {
		t.Fatalf("account = %q", v.keys["AKIDOTHER"].Account)
	}
}
