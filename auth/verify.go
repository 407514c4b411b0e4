package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sdkSigner is the reference SigV4 implementation clients share. Header
// hoisting is off so a presigned request keeps its headers where the client
// put them. Path escaping stays on: every service but S3 signs the escaped
// path escaped again.
var sdkSigner = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })

// verifySignature recomputes the client's signature with secret and compares
// it in constant time.
func verifySignature(r *http.Request, body []byte, c *claim, secret string) error {
	hash, err := payloadHash(r, body)
	if err != nil {
		return err
	}
	query := r.URL.Query()
	if c.presigned {
		query.Del(qSignature) // the one parameter the signature cannot cover
	}
	want, ok := sdkSignature(r, c, query, hash, secret)
	if !ok {
		want = canonicalSignature(r, c, query, hash, secret)
	}
	if !hmac.Equal([]byte(want), []byte(c.signature)) {
		return errMismatch()
	}
	return nil
}

// payloadHash is the hash the client signed: X-Amz-Content-Sha256 when sent
// (it must then be the body's hash, or a tampered body would pass), else the
// SHA-256 of the body. Unsigned and streaming payloads are not accepted.
func payloadHash(r *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	if sent := r.Header.Get("X-Amz-Content-Sha256"); sent != "" {
		if !strings.EqualFold(sent, h) {
			return "", errInvalid("X-Amz-Content-Sha256 '%s' is not the SHA-256 of the request body; the payload must be signed.", clip(sent))
		}
		return sent, nil
	}
	return h, nil
}

// sdkSignature signs a copy of the request that carries exactly the client's
// signed headers with the SDK signer. ok is false when the signer would sign
// a different header set than the client did (its rules add or skip some
// headers); the caller then computes the signature itself.
func sdkSignature(r *http.Request, c *claim, query url.Values, hash, secret string) (sig string, ok bool) {
	req := &http.Request{
		Method: r.Method,
		Host:   r.Host,
		URL:    &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath},
		Header: http.Header{},
	}
	for _, n := range c.signedHeaders {
		l := strings.ToLower(n)
		switch {
		case l == "host":
			continue // the signer takes it from req.Host
		case l == "x-amz-date" && !c.presigned:
			continue // the signer writes it from the signing time
		case l == "content-length":
			// The signer signs req.ContentLength, and only when positive.
			vs := headerValues(r, n)
			if len(vs) != 1 {
				return "", false
			}
			cl, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
			if err != nil || cl <= 0 {
				return "", false
			}
			req.ContentLength = cl
			continue
		}
		// Lowercase keys: the signer's skip list matches canonical keys only,
		// so a client that signed e.g. user-agent is still reproduced.
		req.Header[l] = headerValues(r, n)
	}
	creds := aws.Credentials{AccessKeyID: c.accessKeyID, SecretAccessKey: secret}
	ctx := context.Background()
	if c.presigned {
		req.URL.RawQuery = query.Encode()
		signed, _, err := sdkSigner.PresignHTTP(ctx, creds, req, hash, c.service, c.region, c.time)
		if err != nil {
			return "", false
		}
		u, err := url.Parse(signed)
		if err != nil {
			return "", false
		}
		q := u.Query()
		return q.Get(qSignature), q.Get(qSignedHeaders) == c.signedHeadersRaw
	}
	req.URL.RawQuery = r.URL.RawQuery
	if err := sdkSigner.SignHTTP(ctx, creds, req, hash, c.service, c.region, c.time); err != nil {
		return "", false
	}
	a, err := parseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		return "", false
	}
	return a.Signature, a.SignedHeaders == c.signedHeadersRaw
}
