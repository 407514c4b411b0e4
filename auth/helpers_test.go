package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ecsd/ecsd/api/ecs"
)

var testNow = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

const (
	testKey     = "AKIDTESTKEY0001"
	testSecret  = "t0p/s3cret+Key/For=Tests"
	testAccount = "111122223333"
	testBody    = `{"maxResults":10}`
	ecsTarget   = "AmazonEC2ContainerServiceV20141113.ListClusters"
)

func strictVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := New(Config{
		Mode:        Strict,
		Credentials: []Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret, Account: testAccount}},
		Now:         func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func devVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := New(Config{
		Mode:           Dev,
		Credentials:    []Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret, Account: testAccount}},
		DefaultAccount: "123456789012",
		DefaultRegion:  "eu-west-1",
		Now:            func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signOpts describe how a test client signs.
type signOpts struct {
	key, secret     string
	region, service string
	when            time.Time
	// botocore signs only content-type;host;x-amz-date;x-amz-target, like CLI v1.
	botocore bool
	// contentSha sends and signs X-Amz-Content-Sha256.
	contentSha bool
	url        string
	body       string
}

func (o signOpts) withDefaults() signOpts {
	if o.key == "" {
		o.key = testKey
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.region == "" {
		o.region = "us-east-1"
	}
	if o.service == "" {
		o.service = "ecs"
	}
	if o.when.IsZero() {
		o.when = testNow.Add(-30 * time.Second)
	}
	if o.url == "" {
		o.url = "http://127.0.0.1:8080/"
	}
	if o.body == "" {
		o.body = testBody
	}
	return o
}

// sign builds a JSON 1.1 API request the way the SDKs do, signs it with the
// aws-sdk-go-v2 v4 signer, and returns it as the server would receive it.
func sign(t testing.TB, o signOpts) (*http.Request, []byte) {
	t.Helper()
	o = o.withDefaults()
	req, err := http.NewRequest(http.MethodPost, o.url, strings.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", ecsTarget)
	if !o.botocore {
		req.Header.Set("Amz-Sdk-Invocation-Id", "2a1c2a3e-0f5b-4c3e-9d7e-0123456789ab")
		req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	}
	hash := sha256Hex(o.body)
	if o.contentSha {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	n := req.ContentLength
	if o.botocore {
		req.ContentLength = 0 // botocore does not sign content-length
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: o.key, SecretAccessKey: o.secret},
		req, hash, o.service, o.region, o.when); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	// Headers a client adds without signing them.
	req.Header.Set("User-Agent", "aws-cli/1.45 Python/3.11 botocore/1.43")
	return toServer(t, req)
}

// toServer round-trips a client request through its wire form, so the test
// sees what a Go server sees (Host moved out of the header map, and so on).
func toServer(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, body
}

// wantCode fails unless err is an *ecs.Error with code (and, if given, a
// message containing msg).
func wantCode(t testing.TB, err error, code, msg string) {
	t.Helper()
	var e *ecs.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *ecs.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%s), want %s", e.Code, e.Message, code)
	}
	if msg != "" && !strings.Contains(e.Message, msg) {
		t.Fatalf("message = %q, want it to contain %q", e.Message, msg)
	}
}

// setAuthParam rewrites one parameter of a request's Authorization header.
func setAuthParam(r *http.Request, name, value string) {
	h := r.Header.Get("Authorization")
	parts := strings.Split(h, ", ")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && strings.HasSuffix(k, name) {
			prefix := k[:len(k)-len(name)]
			parts[i] = prefix + name + "=" + value
		}
	}
	r.Header.Set("Authorization", strings.Join(parts, ", "))
}

func authParam(r *http.Request, name string) string {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		panic(err)
	}
	switch name {
	case "Credential":
		return a.Credential
	case "SignedHeaders":
		return a.SignedHeaders
	}
	return a.Signature
}
