// Package auth verifies AWS Signature Version 4 on API requests and maps access
// keys to accounts. (Minimal placeholder: being completed.)
package auth

import (
	"net/http"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Identity is who signed a request and where it acts.
type Identity struct {
	AccessKeyID string
	Account     string
	Region      string
	Service     string
	// Principal is the caller's ARN (arn:aws:iam::<account>:root for account keys).
	Principal string
}

// Mode selects how strictly signatures are checked.
type Mode string

const (
	// Strict recomputes every signature with a configured secret (ecsd server).
	Strict Mode = "strict"
	// Dev accepts any well-formed signature (ecsd dev), the way local emulators do;
	// a 12-digit access key id selects that account.
	Dev Mode = "dev"
)

// Credential is one access key and the account it acts for.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	Account         string
}

// Config configures a Verifier.
type Config struct {
	Mode           Mode
	Credentials    []Credential
	DefaultAccount string
	DefaultRegion  string
	MaxSkew        time.Duration
	Now            func() time.Time
}

// Verifier authenticates requests.
type Verifier struct{ cfg Config }

func New(cfg Config) (*Verifier, error) { return &Verifier{cfg: cfg}, nil }

func (v *Verifier) Authenticate(r *http.Request, body []byte) (Identity, error) {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return Identity{}, ecs.Errorf(ecs.CodeMissingAuthenticationToken, "Missing Authentication Token")
	}
	cred := strings.SplitN(strings.SplitN(h[i+len("Credential="):], ",", 2)[0], "/", 5)
	if len(cred) != 5 {
		return Identity{}, ecs.Errorf(ecs.CodeIncompleteSignature, "Credential is malformed")
	}
	acct := v.cfg.DefaultAccount
	return Identity{AccessKeyID: cred[0], Account: acct, Region: cred[2], Service: cred[3], Principal: "arn:aws:iam::" + acct + ":root"}, nil
}

// LoadCredentialsFile reads ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID lines.
func LoadCredentialsFile(path string) ([]Credential, error) { return nil, nil }
