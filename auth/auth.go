// Package auth verifies AWS Signature Version 4 on API requests and maps access
// keys to accounts.
//
// A request is signed either in its Authorization header or, presigned, in its
// query string. Strict mode recomputes every signature with the access key's
// configured secret; dev mode checks only that the signature is well formed
// and recent, the way local emulators do. Either way the credential scope
// names the region and service the request acts in.
package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Identity is who signed a request and where it acts.
type Identity struct {
	AccessKeyID string
	Account     string
	Region      string
	// Service is the credential scope's service ("ecs", "logs", ...): one
	// listener may serve several services, so the caller decides.
	Service string
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
	// Account is a 12-digit account id; empty means Config.DefaultAccount.
	Account string
}

// Config configures a Verifier.
type Config struct {
	Mode        Mode
	Credentials []Credential
	// DefaultAccount is the account of keys that name none (default 000000000000).
	DefaultAccount string
	// DefaultRegion is used when a credential scope names no region (default us-east-1).
	DefaultRegion string
	// MaxSkew is the largest accepted distance between X-Amz-Date and now (default 15 min).
	MaxSkew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults for Config's zero fields.
const (
	DefaultAccount = "000000000000"
	DefaultRegion  = "us-east-1"
	DefaultMaxSkew = 15 * time.Minute
)

// Verifier authenticates requests. It is safe for concurrent use.
type Verifier struct {
	cfg  Config
	keys map[string]Credential
}

// New checks cfg, fills its defaults and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Mode != Strict && cfg.Mode != Dev {
		return nil, fmt.Errorf("auth: mode %q: want %q or %q", cfg.Mode, Strict, Dev)
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = DefaultAccount
	}
	if !isAccount(cfg.DefaultAccount) {
		return nil, fmt.Errorf("auth: default account %q: want 12 digits", cfg.DefaultAccount)
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = DefaultRegion
	}
	if !isName(cfg.DefaultRegion) {
		return nil, fmt.Errorf("auth: default region %q: want lowercase letters, digits and '-'", cfg.DefaultRegion)
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	keys := make(map[string]Credential, len(cfg.Credentials))
	for i, c := range cfg.Credentials {
		if c.AccessKeyID == "" || !printable(c.AccessKeyID) || strings.Contains(c.AccessKeyID, "/") {
			return nil, fmt.Errorf("auth: credential %d: access key id %q: want visible characters other than '/'", i+1, c.AccessKeyID)
		}
		if c.SecretAccessKey == "" {
			return nil, fmt.Errorf("auth: access key %s has no secret", c.AccessKeyID)
		}
		if c.Account == "" {
			c.Account = cfg.DefaultAccount
		}
		if !isAccount(c.Account) {
			return nil, fmt.Errorf("auth: access key %s: account %q: want 12 digits", c.AccessKeyID, c.Account)
		}
		if _, dup := keys[c.AccessKeyID]; dup {
			return nil, fmt.Errorf("auth: access key %s is configured more than once", c.AccessKeyID)
		}
		keys[c.AccessKeyID] = c
	}
	if cfg.Mode == Strict && len(keys) == 0 {
		return nil, fmt.Errorf("auth: strict mode needs at least one access key")
	}
	cfg.Credentials = nil // the map holds them
	return &Verifier{cfg: cfg, keys: keys}, nil
}

// Authenticate checks a request's signature over body (the full request body,
// already read) and returns who signed it. Every error is an *ecs.Error.
func (v *Verifier) Authenticate(r *http.Request, body []byte) (Identity, error) {
	c, err := readClaim(r)
	if err != nil {
		return Identity{}, err
	}
	if err := v.checkTime(c); err != nil {
		return Identity{}, err
	}
	var account string
	cred, known := v.keys[c.accessKeyID]
	switch v.cfg.Mode {
	case Strict:
		if !known {
			return Identity{}, errUnknownKey()
		}
		if err := verifySignature(r, body, c, cred.SecretAccessKey); err != nil {
			return Identity{}, err
		}
		account = cred.Account
	default: // Dev
		switch {
		case isAccount(c.accessKeyID):
			account = c.accessKeyID
		case known:
			account = cred.Account
		default:
			account = v.cfg.DefaultAccount
		}
	}
	region := c.region
	if region == "" {
		region = v.cfg.DefaultRegion
	}
	return Identity{
		AccessKeyID: c.accessKeyID,
		Account:     account,
		Region:      region,
		Service:     c.service,
		Principal:   "arn:aws:iam::" + account + ":root",
	}, nil
}

// readClaim finds the request's signature: header or query, never both.
func readClaim(r *http.Request) (*claim, error) {
	if r == nil || r.URL == nil {
		return nil, errMissingToken()
	}
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	q := r.URL.Query()
	query := hasQueryAuth(q)
	switch {
	case h != "" && query:
		return nil, errIncomplete("Only one authentication mechanism is allowed: sign either in the Authorization header or with the X-Amz-Algorithm query parameters, not both.")
	case h != "":
		return headerClaim(r, h)
	case query:
		return queryClaim(q)
	}
	return nil, errMissingToken()
}

// checkTime rejects a signature made too long before or after now (or, when
// presigned with X-Amz-Expires, used after it expired).
func (v *Verifier) checkTime(c *claim) error {
	now := v.cfg.Now().UTC()
	skew := v.cfg.MaxSkew
	if c.time.After(now.Add(skew)) {
		return errSkew(c.time, now, skew)
	}
	if c.presigned && c.expires > 0 {
		if now.After(c.time.Add(c.expires)) {
			return errInvalid("Request has expired: signed at %s for %d seconds, and it is now %s.",
				c.amzDate, int64(c.expires/time.Second), now.Format(amzDateLayout))
		}
		return nil
	}
	if c.time.Before(now.Add(-skew)) {
		return errSkew(c.time, now, skew)
	}
	return nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
