package auth

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	scopeTerminator = "aws4_request"
	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"
	// maxPresignExpiry is the longest X-Amz-Expires SigV4 allows (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// Query parameters of a presigned request.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qExpires       = "X-Amz-Expires"
)

// authHeader is the parameters of an Authorization header, not yet validated.
type authHeader struct {
	Algorithm     string
	Credential    string
	SignedHeaders string
	Signature     string
}

// claim is what a request's signature asserts, parsed and checked for form:
// who signed, for which scope, over which headers, at what time.
type claim struct {
	presigned bool
	// authorization is the header as sent, quoted back in some messages.
	authorization string

	accessKeyID string
	scopeDate   string // YYYYMMDD
	region      string // as in the scope; may be empty
	service     string

	// signedHeaders is the client's list in its order; signedHeadersRaw the
	// list as sent (it is part of the string the client signed).
	signedHeaders    []string
	signedHeadersRaw string
	signature        string // lowercase hex

	// amzDate is the signing time as it appears in the string to sign.
	amzDate string
	time    time.Time
	// expires bounds a presigned request's life (0: not given).
	expires time.Duration
}

// parseAuthorization splits an Authorization header into its algorithm and
// parameters. Like AWS it separates parameters by commas and white space, so
// "a=1, b=2", "a=1,b=2" and "a=1 b=2" all parse; a token without '=' is an
// error. Missing parameters are not an error here: the caller reports every
// missing part at once.
func parseAuthorization(h string) (authHeader, error) {
	var a authHeader
	fields := strings.FieldsFunc(h, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
	if len(fields) == 0 {
		return a, nil
	}
	a.Algorithm = fields[0]
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return a, errIncomplete("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", clip(f), clip(h))
		}
		var dst *string
		switch k {
		case "Credential":
			dst = &a.Credential
		case "SignedHeaders":
			dst = &a.SignedHeaders
		case "Signature":
			dst = &a.Signature
		default:
			continue // AWS ignores parameters it does not know
		}
		if seen[k] {
			return a, errIncomplete("Authorization header has more than one '%s' parameter: '%s'.", k, clip(h))
		}
		seen[k] = true
		*dst = v
	}
	return a, nil
}

// headerClaim reads the claim of a request signed in its Authorization header.
func headerClaim(r *http.Request, h string) (*claim, error) {
	a, err := parseAuthorization(h)
	if err != nil {
		return nil, err
	}
	var missing []string
	if a.Credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if a.SignedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	amzDate, date := r.Header.Get("X-Amz-Date"), r.Header.Get("Date")
	if amzDate == "" && date == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, errMissingParts(missing, h)
	}
	if a.Algorithm != algorithm {
		return nil, errIncomplete("Unsupported AWS 'algorithm': '%s'; only '%s' is supported.", clip(a.Algorithm), algorithm)
	}
	c := &claim{authorization: h}
	// X-Amz-Date wins over Date, as in AWS.
	if amzDate != "" {
		if c.time, err = parseAmzDate(amzDate, "X-Amz-Date"); err != nil {
			return nil, err
		}
	} else {
		t, perr := http.ParseTime(date)
		if perr != nil {
			return nil, errIncomplete("Date header '%s' is not an HTTP date.", clip(date))
		}
		c.time = t.UTC()
	}
	c.amzDate = c.time.Format(amzDateLayout)
	if err := c.fill(a.Credential, a.SignedHeaders, a.Signature); err != nil {
		return nil, err
	}
	return c, nil
}

// hasQueryAuth reports whether a request carries (perhaps incomplete) presigned
// query authentication.
func hasQueryAuth(q url.Values) bool {
	return q.Has(qAlgorithm) || q.Has(qCredential) || q.Has(qSignature)
}

// queryClaim reads the claim of a presigned request.
func queryClaim(q url.Values) (*claim, error) {
	var missing []string
	for _, k := range []string{qAlgorithm, qCredential, qSignature, qSignedHeaders, qDate} {
		if q.Get(k) == "" {
			missing = append(missing, "'"+k+"'")
		}
	}
	if len(missing) > 0 {
		return nil, errIncomplete("AWS query-string parameters must include %s. Re-examine the query-string parameters.", strings.Join(missing, ", "))
	}
	if alg := q.Get(qAlgorithm); alg != algorithm {
		return nil, errIncomplete("Unsupported AWS 'algorithm': '%s'; only '%s' is supported.", clip(alg), algorithm)
	}
	c := &claim{presigned: true}
	var err error
	if c.time, err = parseAmzDate(q.Get(qDate), qDate); err != nil {
		return nil, err
	}
	c.amzDate = c.time.Format(amzDateLayout)
	if v := q.Get(qExpires); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || time.Duration(n)*time.Second > maxPresignExpiry {
			return nil, errIncomplete("X-Amz-Expires must be a whole number of seconds from 1 to %d, not '%s'.", int64(maxPresignExpiry/time.Second), clip(v))
		}
		c.expires = time.Duration(n) * time.Second
	}
	if err := c.fill(q.Get(qCredential), q.Get(qSignedHeaders), q.Get(qSignature)); err != nil {
		return nil, err
	}
	return c, nil
}

// parseAmzDate reads an ISO 8601 basic-format UTC timestamp (20240131T235959Z).
func parseAmzDate(v, name string) (time.Time, error) {
	t, err := time.Parse(amzDateLayout, v)
	if err != nil || len(v) != len(amzDateLayout) {
		return time.Time{}, errIncomplete("%s '%s' is not a timestamp of the form YYYYMMDD'T'HHMMSS'Z'.", name, clip(v))
	}
	return t, nil
}

// fill parses and checks the credential scope, signed headers and signature.
func (c *claim) fill(credential, signedHeaders, signature string) error {
	if err := c.parseCredential(credential); err != nil {
		return err
	}
	if err := c.parseSignedHeaders(signedHeaders); err != nil {
		return err
	}
	if len(signature) != 64 || !isHex(signature) {
		return errIncomplete("Signature '%s' is not a 64-digit hexadecimal HMAC-SHA256.", clip(signature))
	}
	c.signature = strings.ToLower(signature)
	// The scope's date must be the signing time's date.
	if c.scopeDate != c.amzDate[:8] {
		return errInvalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			c.scopeDate, c.amzDate[:8], c.amzDate)
	}
	return nil
}

// parseCredential reads <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.
func (c *claim) parseCredential(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" || parts[1] == "" || parts[3] == "" || !printable(parts[0]) {
		return errIncomplete("Credential '%s' is malformed: expected <access key id>/<YYYYMMDD>/<region>/<service>/%s.", clip(v), scopeTerminator)
	}
	if parts[4] != scopeTerminator {
		return errIncomplete("Credential should be scoped with a valid terminator: '%s', not '%s'.", scopeTerminator, clip(parts[4]))
	}
	if _, err := time.Parse(scopeDateLayout, parts[1]); err != nil || len(parts[1]) != 8 {
		return errIncomplete("Credential scope date '%s' is not a date of the form YYYYMMDD.", clip(parts[1]))
	}
	// Region and service end up in ARNs and routing: allow only the
	// characters AWS's own names use.
	if !isName(parts[2]) && parts[2] != "" {
		return errInvalid("Credential should be scoped to a valid region, not '%s'.", clip(parts[2]))
	}
	if !isName(parts[3]) {
		return errInvalid("Credential should be scoped to a valid service, not '%s'.", clip(parts[3]))
	}
	c.accessKeyID, c.scopeDate, c.region, c.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// parseSignedHeaders reads a;b;c. The host header must be signed: without it
// a signature could be replayed against another endpoint.
func (c *claim) parseSignedHeaders(v string) error {
	names := strings.Split(v, ";")
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || !isToken(n) {
			return errIncomplete("SignedHeaders '%s' is malformed: expected lowercase header names separated by ';'.", clip(v))
		}
		l := strings.ToLower(n)
		if seen[l] {
			return errIncomplete("SignedHeaders '%s' names '%s' more than once.", clip(v), clip(l))
		}
		seen[l] = true
	}
	if !seen["host"] {
		return errIncomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	c.signedHeaders, c.signedHeadersRaw = names, v
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F') {
			return false
		}
	}
	return true
}

// isName accepts region and service names: lowercase letters, digits, '-', '.', '_'.
func isName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_') {
			return false
		}
	}
	return true
}

// printable accepts visible ASCII (access key ids are quoted in logs).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// isToken accepts an HTTP header field name (RFC 9110 token).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}
