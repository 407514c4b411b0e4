package auth

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/ecsd/ecsd/api/ecs"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers (and X-Amz-Date
// values) through parsing and both verification modes: nothing may panic, and
// every rejection must be an *ecs.Error (anything else would reach clients as
// a 500 they retry).
//
//	go test -fuzz FuzzParseAuthorization -fuzztime 20s ./auth/
func FuzzParseAuthorization(f *testing.F) {
	good, _ := sign(f, signOpts{})
	f.Add(good.Header.Get("Authorization"), good.Header.Get("X-Amz-Date"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20250314/us-east-1/ecs/aws4_request,SignedHeaders=host;x-amz-date,Signature=00", "20250314T115930Z")
	f.Add("AWS4-HMAC-SHA256 Credential=123456789012/20250314//ecs/aws4_request, SignedHeaders=host, Signature="+
		"0000000000000000000000000000000000000000000000000000000000000000", "20250314T115930Z")
	f.Add("Bearer x.y.z", "")
	f.Add("AWS4-HMAC-SHA256", "garbage")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature==", "99999999T999999Z")
	f.Add(",,, = ,=,", "20250314T115930Z")
	strict := strictVerifier(f)
	dev := devVerifier(f)
	f.Fuzz(func(t *testing.T, authz, date string) {
		if a, err := parseAuthorization(authz); err == nil {
			_ = a
		} else {
			mustBeWire(t, err)
		}
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/"}, Host: "127.0.0.1:8080", Header: http.Header{}}
		r.Header["Authorization"] = []string{authz}
		if date != "" {
			r.Header["X-Amz-Date"] = []string{date}
		}
		body := []byte(testBody)
		if _, err := strict.Authenticate(r, body); err != nil {
			mustBeWire(t, err)
		}
		id, err := dev.Authenticate(r, body)
		if err != nil {
			mustBeWire(t, err)
			return
		}
		if !isAccount(id.Account) || !isName(id.Region) || !isName(id.Service) || id.AccessKeyID == "" {
			t.Fatalf("dev mode accepted %q with identity %+v", authz, id)
		}
	})
}

func mustBeWire(t *testing.T, err error) {
	t.Helper()
	var e *ecs.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *ecs.Error", err, err)
	}
	switch e.Code {
	case ecs.CodeMissingAuthenticationToken, ecs.CodeIncompleteSignature, ecs.CodeInvalidSignature, ecs.CodeUnrecognizedClient:
	default:
		t.Fatalf("unexpected code %s: %s", e.Code, e.Message)
	}
}
