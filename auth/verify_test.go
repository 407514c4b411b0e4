package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ecsd/ecsd/api/ecs"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestStrictAcceptsSDKSignedRequests(t *testing.T) {
	v := strictVerifier(t)
	cases := map[string]signOpts{
		"go sdk":                 {},
		"botocore header set":    {botocore: true},
		"content sha256":         {contentSha: true},
		"botocore+content sha":   {botocore: true, contentSha: true},
		"other region":           {region: "eu-central-1"},
		"other service":          {service: "logs"},
		"host with default port": {url: "http://localhost:80/"},
		"host name":              {url: "https://ecs.example.test/"},
		"path and query":         {url: "http://127.0.0.1:8080/a%20b/c/?z=1&a=2&a=1&sp=x%20y"},
		"empty body":             {body: " "},
		"signed just now":        {when: testNow},
		"signed 14 min ago":      {when: testNow.Add(-14 * time.Minute)},
		"signed 14 min ahead":    {when: testNow.Add(14 * time.Minute)},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			r, body := sign(t, o)
			id, err := v.Authenticate(r, body)
			if err != nil {
				t.Fatalf("Authenticate: %v\nAuthorization: %s", err, r.Header.Get("Authorization"))
			}
			o = o.withDefaults()
			want := Identity{AccessKeyID: testKey, Account: testAccount, Region: o.region, Service: o.service,
				Principal: "arn:aws:iam::" + testAccount + ":root"}
			if id != want {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

func TestBotocoreSignedHeaderSet(t *testing.T) {
	r, _ := sign(t, signOpts{botocore: true})
	if got := authParam(r, "SignedHeaders"); got != "content-type;host;x-amz-date;x-amz-target" {
		t.Fatalf("SignedHeaders = %q, want botocore's set", got)
	}
	if r.Header.Get("Content-Length") == "" {
		t.Fatal("request carries no Content-Length")
	}
	r, _ = sign(t, signOpts{})
	if got := authParam(r, "SignedHeaders"); got != "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target" {
		t.Fatalf("SignedHeaders = %q, want the Go SDK's set", got)
	}
}

func TestStrictRejects(t *testing.T) {
	v := strictVerifier(t)
	cases := []struct {
		name   string
		opts   signOpts
		mutate func(r *http.Request, body []byte) []byte
		code   string
		msg    string
	}{
		{name: "wrong secret", opts: signOpts{secret: "not-the-secret"},
			code: ecs.CodeInvalidSignature, msg: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
		{name: "tampered body", mutate: func(r *http.Request, b []byte) []byte { return []byte(`{"maxResults":11}`) },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered body botocore", opts: signOpts{botocore: true}, mutate: func(r *http.Request, b []byte) []byte { return append(b, ' ') },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered body with content sha", opts: signOpts{contentSha: true}, mutate: func(r *http.Request, b []byte) []byte { return []byte(`{}`) },
			code: ecs.CodeInvalidSignature, msg: "X-Amz-Content-Sha256"},
		{name: "unsigned payload", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			return b
		},
			code: ecs.CodeInvalidSignature, msg: "X-Amz-Content-Sha256"},
		{name: "tampered target", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster")
			return b
		}, code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered host", mutate: func(r *http.Request, b []byte) []byte { r.Host = "127.0.0.1:9090"; return b },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered path", mutate: func(r *http.Request, b []byte) []byte { r.URL.Path = "/x"; return b },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered query", mutate: func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "a=1"; return b },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "tampered signature", mutate: func(r *http.Request, b []byte) []byte {
			setAuthParam(r, "Signature", strings.Repeat("0", 64))
			return b
		}, code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "signed for another region", mutate: func(r *http.Request, b []byte) []byte {
			setAuthParam(r, "Credential", strings.Replace(authParam(r, "Credential"), "us-east-1", "us-west-2", 1))
			return b
		}, code: ecs.CodeInvalidSignature, msg: "does not match"},
		{name: "unknown key", opts: signOpts{key: "AKIDUNKNOWN"},
			code: ecs.CodeUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "expired", opts: signOpts{when: testNow.Add(-16 * time.Minute)},
			code: ecs.CodeInvalidSignature, msg: "Signature expired: 20250314T114400Z is now earlier than 20250314T114500Z (20250314T120000Z - 15 min.)"},
		{name: "not yet current", opts: signOpts{when: testNow.Add(16 * time.Minute)},
			code: ecs.CodeInvalidSignature, msg: "Signature not yet current: 20250314T121600Z is still later than 20250314T121500Z (20250314T120000Z + 15 min.)"},
		{name: "scope date differs from X-Amz-Date", mutate: func(r *http.Request, b []byte) []byte {
			setAuthParam(r, "Credential", strings.Replace(authParam(r, "Credential"), "20250314", "20250313", 1))
			return b
		}, code: ecs.CodeInvalidSignature, msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20250313' != '20250314', from '20250314T115930Z'."},
		{name: "x-amz-date changed", mutate: func(r *http.Request, b []byte) []byte { r.Header.Set("X-Amz-Date", "20250314T115931Z"); return b },
			code: ecs.CodeInvalidSignature, msg: "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, body := sign(t, tc.opts)
			if tc.mutate != nil {
				body = tc.mutate(r, body)
			}
			_, err := v.Authenticate(r, body)
			wantCode(t, err, tc.code, tc.msg)
		})
	}
}

func TestAuthorizationSpacingVariants(t *testing.T) {
	v := strictVerifier(t)
	r, body := sign(t, signOpts{})
	cred, sh, sig := authParam(r, "Credential"), authParam(r, "SignedHeaders"), authParam(r, "Signature")
	variants := []string{
		fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s", cred, sh, sig),
		fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s", cred, sh, sig),
		fmt.Sprintf("AWS4-HMAC-SHA256   Credential=%s ,  SignedHeaders=%s\t, Signature=%s  ", cred, sh, sig),
		fmt.Sprintf("AWS4-HMAC-SHA256 Signature=%s, Credential=%s, SignedHeaders=%s", sig, cred, sh),
		fmt.Sprintf("AWS4-HMAC-SHA256 SignedHeaders=%s Signature=%s Credential=%s", sh, sig, cred),
		fmt.Sprintf("  AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s, Extra=ignored", cred, sh, strings.ToUpper(sig)),
	}
	for i, h := range variants {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r.Header.Set("Authorization", h)
			if _, err := v.Authenticate(r, body); err != nil {
				t.Fatalf("%q: %v", h, err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, mode := range []Mode{Strict, Dev} {
		t.Run(string(mode), func(t *testing.T) {
			v := strictVerifier(t)
			if mode == Dev {
				v = devVerifier(t)
			}
			good, body := sign(t, signOpts{})
			cred, sh, sig := authParam(good, "Credential"), authParam(good, "SignedHeaders"), authParam(good, "Signature")
			auth := func(c, s, g string) string {
				return fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s", c, s, g)
			}
			cases := []struct {
				name, authz string
				date        *string
				code, msg   string
			}{
				{name: "no authorization", authz: "", code: ecs.CodeMissingAuthenticationToken, msg: "Missing Authentication Token"},
				{name: "blank authorization", authz: "   ", code: ecs.CodeMissingAuthenticationToken},
				{name: "no credential", authz: "AWS4-HMAC-SHA256 SignedHeaders=" + sh + ", Signature=" + sig,
					code: ecs.CodeIncompleteSignature, msg: "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256"},
				{name: "no signed headers", authz: "AWS4-HMAC-SHA256 Credential=" + cred + ", Signature=" + sig,
					code: ecs.CodeIncompleteSignature, msg: "Authorization header requires 'SignedHeaders' parameter."},
				{name: "no signature", authz: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh,
					code: ecs.CodeIncompleteSignature, msg: "Authorization header requires 'Signature' parameter."},
				{name: "only algorithm", authz: "AWS4-HMAC-SHA256",
					code: ecs.CodeIncompleteSignature, msg: "requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."},
				{name: "empty credential", authz: auth("", sh, sig), code: ecs.CodeIncompleteSignature, msg: "'Credential' parameter"},
				{name: "bearer token", authz: "Bearer abc.def.ghi",
					code: ecs.CodeIncompleteSignature, msg: "'abc.def.ghi' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc.def.ghi'."},
				{name: "space after equals", authz: "AWS4-HMAC-SHA256 Credential= " + cred + ", SignedHeaders=" + sh + ", Signature=" + sig,
					code: ecs.CodeIncompleteSignature, msg: "not a valid key=value pair"},
				{name: "sigv2", authz: "AWS " + testKey + ":c2lnbmF0dXJl", code: ecs.CodeIncompleteSignature, msg: "not a valid key=value pair"},
				{name: "other algorithm", authz: strings.Replace(auth(cred, sh, sig), "SHA256", "SHA512", 1),
					code: ecs.CodeIncompleteSignature, msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"},
				{name: "duplicate parameter", authz: auth(cred, sh, sig) + ", Signature=" + sig,
					code: ecs.CodeIncompleteSignature, msg: "more than one 'Signature'"},
				{name: "credential too short", authz: auth(testKey+"/20250314/us-east-1/ecs", sh, sig),
					code: ecs.CodeIncompleteSignature, msg: "Credential '" + testKey + "/20250314/us-east-1/ecs' is malformed"},
				{name: "credential too long", authz: auth("a/"+cred, sh, sig), code: ecs.CodeIncompleteSignature, msg: "is malformed"},
				{name: "credential no key", authz: auth("/20250314/us-east-1/ecs/aws4_request", sh, sig), code: ecs.CodeIncompleteSignature, msg: "is malformed"},
				{name: "credential no service", authz: auth(testKey+"/20250314/us-east-1//aws4_request", sh, sig), code: ecs.CodeIncompleteSignature, msg: "is malformed"},
				{name: "bad terminator", authz: auth(testKey+"/20250314/us-east-1/ecs/aws5_request", sh, sig),
					code: ecs.CodeIncompleteSignature, msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."},
				{name: "bad scope date", authz: auth(testKey+"/2025-03-14/us-east-1/ecs/aws4_request", sh, sig),
					code: ecs.CodeIncompleteSignature, msg: "Credential scope date '2025-03-14'"},
				{name: "impossible scope date", authz: auth(testKey+"/20251314/us-east-1/ecs/aws4_request", sh, sig),
					code: ecs.CodeIncompleteSignature, msg: "Credential scope date '20251314'"},
				{name: "bad region", authz: auth(testKey+"/20250314/US:EAST/ecs/aws4_request", sh, sig),
					code: ecs.CodeInvalidSignature, msg: "Credential should be scoped to a valid region, not 'US:EAST'."},
				{name: "bad service", authz: auth(testKey+"/20250314/us-east-1/E:CS/aws4_request", sh, sig),
					code: ecs.CodeInvalidSignature, msg: "Credential should be scoped to a valid service, not 'E:CS'."},
				{name: "space in credential", authz: auth(testKey+"/20250314/us-east-1/E C S/aws4_request", sh, sig),
					code: ecs.CodeIncompleteSignature, msg: "'C' not a valid key=value pair"},
				{name: "non-hex signature", authz: auth(cred, sh, strings.Repeat("g", 64)),
					code: ecs.CodeIncompleteSignature, msg: "Signature '" + strings.Repeat("g", 64) + "'"},
				{name: "short signature", authz: auth(cred, sh, sig[:63]), code: ecs.CodeIncompleteSignature, msg: "64-digit hexadecimal"},
				{name: "host not signed", authz: auth(cred, "content-type;x-amz-date;x-amz-target", sig),
					code: ecs.CodeIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader'"},
				{name: "empty signed header name", authz: auth(cred, "host;;x-amz-date", sig), code: ecs.CodeIncompleteSignature, msg: "SignedHeaders"},
				{name: "signed header twice", authz: auth(cred, "host;host;x-amz-date", sig), code: ecs.CodeIncompleteSignature, msg: "more than once"},
				{name: "no date", authz: auth(cred, sh, sig), date: new(""),
					code: ecs.CodeIncompleteSignature, msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"},
				{name: "no date and no signature", authz: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh, date: new(""),
					code: ecs.CodeIncompleteSignature, msg: "Authorization header requires 'Signature' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
				{name: "unparsable date", authz: auth(cred, sh, sig), date: new("2025-03-14T11:59:30Z"),
					code: ecs.CodeIncompleteSignature, msg: "X-Amz-Date '2025-03-14T11:59:30Z'"},
				{name: "date with millis", authz: auth(cred, sh, sig), date: new("20250314T115930.123Z"),
					code: ecs.CodeIncompleteSignature, msg: "X-Amz-Date"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := good.Clone(context.Background())
					r.Header.Set("Authorization", tc.authz)
					if tc.authz == "" {
						r.Header.Del("Authorization")
					}
					if tc.date != nil {
						r.Header.Del("X-Amz-Date")
						if *tc.date != "" {
							r.Header.Set("X-Amz-Date", *tc.date)
						}
					}
					_, err := v.Authenticate(r, body)
					wantCode(t, err, tc.code, tc.msg)
				})
			}
		})
	}
}

func TestHeaderAndQueryTogether(t *testing.T) {
	r, body := sign(t, signOpts{})
	r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
	_, err := strictVerifier(t).Authenticate(r, body)
	wantCode(t, err, ecs.CodeIncompleteSignature, "Only one authentication mechanism")
}

func TestDevMode(t *testing.T) {
	v := devVerifier(t)
	cases := []struct {
		name, key, region string
		wantAccount       string
		wantRegion        string
	}{
		{"12-digit key selects the account", "210987654321", "us-west-2", "210987654321", "us-west-2"},
		{"known key uses its account", testKey, "us-east-1", testAccount, "us-east-1"},
		{"unknown key uses the default", "AKIDANYTHING", "ap-south-1", "123456789012", "ap-south-1"},
		{"13 digits is not an account", "2109876543210", "us-east-1", "123456789012", "us-east-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Signed with a secret the server does not know: dev mode accepts it.
			r, body := sign(t, signOpts{key: tc.key, secret: "whatever", region: tc.region})
			id, err := v.Authenticate(r, body)
			if err != nil {
				t.Fatal(err)
			}
			if id.Account != tc.wantAccount || id.Region != tc.wantRegion || id.AccessKeyID != tc.key || id.Service != "ecs" ||
				id.Principal != "arn:aws:iam::"+tc.wantAccount+":root" {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
	t.Run("empty region uses the default", func(t *testing.T) {
		r, body := sign(t, signOpts{})
		setAuthParam(r, "Credential", strings.Replace(authParam(r, "Credential"), "/us-east-1/", "//", 1))
		id, err := v.Authenticate(r, body)
		if err != nil {
			t.Fatal(err)
		}
		if id.Region != "eu-west-1" {
			t.Fatalf("region = %q, want the default", id.Region)
		}
	})
	t.Run("tampered body is accepted", func(t *testing.T) {
		r, _ := sign(t, signOpts{})
		if _, err := v.Authenticate(r, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("skew still enforced", func(t *testing.T) {
		r, body := sign(t, signOpts{when: testNow.Add(-time.Hour)})
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeInvalidSignature, "Signature expired")
	})
}

func TestStrictEmptyRegionVerifies(t *testing.T) {
	// A scope with no region is signed with the empty region, then reported
	// in the default region.
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", strings.NewReader(testBody))
	req.Header.Set("X-Amz-Target", ecsTarget)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
		req, sha256Hex(testBody), "ecs", "", testNow); err != nil {
		t.Fatal(err)
	}
	r, body := toServer(t, req)
	id, err := strictVerifier(t).Authenticate(r, body)
	if err != nil {
		t.Fatal(err)
	}
	if id.Region != DefaultRegion {
		t.Fatalf("region = %q", id.Region)
	}
}

func TestCustomSkew(t *testing.T) {
	v, err := New(Config{Mode: Dev, MaxSkew: 90 * time.Second, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	r, body := sign(t, signOpts{when: testNow.Add(-2 * time.Minute)})
	_, err = v.Authenticate(r, body)
	wantCode(t, err, ecs.CodeInvalidSignature, "(20250314T120000Z - 1m30s)")
	r, body = sign(t, signOpts{when: testNow.Add(-80 * time.Second)})
	if _, err := v.Authenticate(r, body); err != nil {
		t.Fatal(err)
	}
}

// TestFallbackMatchesSDK checks the hand-written canonical request against
// the SDK signer over random requests: header subsets, repeated and spaced
// values, paths and queries that need escaping.
func TestFallbackMatchesSDK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/", "/a/b", "/a%20b/c%2Fd", "/~user/x.y_z-1", "/%E2%82%AC/", ""}
	queries := []string{"", "a=1", "b=2&a=1&a=0", "x=a%20b+c&y=%2F&z=", "Action=ListClusters&Version=2014-11-13", "k"}
	extra := map[string][]string{
		"Content-Type":          {"application/x-amz-json-1.1"},
		"X-Amz-Target":          {ecsTarget},
		"Amz-Sdk-Invocation-Id": {"b0b0"},
		"Amz-Sdk-Request":       {"attempt=1;  max=3"},
		"X-Amz-Meta-Multi":      {"  one ", "two  three"},
		"X-Amz-Security-Token":  {"tok/en+=="},
		"Date":                  {"Fri, 14 Mar 2025 11:59:30 GMT"},
	}
	names := []string{"Content-Type", "X-Amz-Target", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "X-Amz-Meta-Multi", "X-Amz-Security-Token", "Date"}
	for i := 0; i < 300; i++ {
		u := "http://127.0.0.1:8080" + paths[rng.IntN(len(paths))]
		if q := queries[rng.IntN(len(queries))]; q != "" {
			u += "?" + q
		}
		if strings.HasPrefix(u, "http://127.0.0.1:8080?") || u == "http://127.0.0.1:8080" {
			u = strings.Replace(u, "8080", "8080/", 1)
		}
		body := strings.Repeat("x", rng.IntN(3))
		method := []string{http.MethodPost, http.MethodGet, http.MethodPut}[rng.IntN(3)]
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body, req.ContentLength = nil, 0
		}
		for _, n := range names {
			if rng.IntN(2) == 0 {
				for _, v := range extra[n] {
					req.Header.Add(n, v)
				}
			}
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
			req, sha256Hex(body), "ecs", "us-east-1", testNow); err != nil {
			t.Fatal(err)
		}
		r, b := toServer(t, req)
		c, err := readClaim(r)
		if err != nil {
			t.Fatal(err)
		}
		q := r.URL.Query()
		got := canonicalSignature(r, c, q, sha256Hex(string(b)), testSecret)
		if got != c.signature {
			t.Fatalf("case %d %s %s signed %s: fallback signature %s, SDK %s", i, method, u, c.signedHeadersRaw, got, c.signature)
		}
		sdk, ok := sdkSignature(r, c, q, sha256Hex(string(b)), testSecret)
		if !ok || sdk != c.signature {
			t.Fatalf("case %d: SDK re-sign ok=%v sig=%s want %s", i, ok, sdk, c.signature)
		}
	}
}

// TestFallbackSets covers header sets the SDK signer's rules do not produce:
// content-length 0, a Date header instead of X-Amz-Date, an unsigned
// x-amz-date, an unsorted list; and some it reproduces only because the
// verifier hands it lowercase keys (user-agent) or empty values. The client
// signature comes from the canonical code (checked against the SDK above);
// the point is that verification picks a path that accepts the request and
// still rejects a tampered body.
func TestFallbackSets(t *testing.T) {
	v := strictVerifier(t)
	type setup struct {
		name    string
		headers map[string]string
		signed  string
		body    string
		sdk     bool // the SDK path reproduces the set
	}
	amz := testNow.Format(amzDateLayout)
	cases := []setup{
		{"user-agent signed", map[string]string{"X-Amz-Date": amz, "User-Agent": "custom/1.0"}, "host;user-agent;x-amz-date", testBody, true},
		{"declared but absent", map[string]string{"X-Amz-Date": amz}, "host;x-amz-date;x-custom", testBody, true},
		{"content-length zero", map[string]string{"X-Amz-Date": amz}, "content-length;host;x-amz-date", "", false},
		{"date header only", map[string]string{"Date": testNow.Format(http.TimeFormat)}, "date;host", testBody, false},
		{"x-amz-date unsigned", map[string]string{"X-Amz-Date": amz, "X-Amz-Target": ecsTarget}, "host;x-amz-target", testBody, false},
		{"unsorted", map[string]string{"X-Amz-Date": amz, "X-Amz-Target": ecsTarget}, "x-amz-target;host;x-amz-date", testBody, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", strings.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			r, body := toServer(t, req)
			c := &claim{accessKeyID: testKey, scopeDate: "20250314", region: "us-east-1", service: "ecs",
				signedHeaders: strings.Split(tc.signed, ";"), signedHeadersRaw: tc.signed, amzDate: amz, time: testNow}
			sig := canonicalSignature(r, c, r.URL.Query(), sha256Hex(tc.body), testSecret)
			r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s", algorithm, testKey, c.scope(), tc.signed, sig))
			if sdk, ok := sdkSignature(r, c, r.URL.Query(), sha256Hex(tc.body), testSecret); ok != tc.sdk || ok && sdk != sig {
				t.Fatalf("SDK path for %s: ok=%v (want %v), signature %s, canonical %s", tc.signed, ok, tc.sdk, sdk, sig)
			}
			if _, err := v.Authenticate(r, body); err != nil {
				t.Fatal(err)
			}
			_, err := v.Authenticate(r, append(body, '!'))
			wantCode(t, err, ecs.CodeInvalidSignature, "does not match")
		})
	}
}

func TestPresigned(t *testing.T) {
	v := strictVerifier(t)
	presign := func(t *testing.T, secret string, when time.Time, expires string) (*http.Request, []byte) {
		u := "http://127.0.0.1:8080/?Action=ListClusters&Version=2014-11-13"
		if expires != "" {
			u += "&X-Amz-Expires=" + expires
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Amz-Target", ecsTarget)
		signed, hdr, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true }).PresignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}, req, sha256Hex(""), "ecs", "us-west-2", when)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := http.NewRequest(http.MethodGet, signed, nil)
		for k, vs := range hdr {
			if k != "Host" {
				out.Header[k] = vs
			}
		}
		return toServer(t, out)
	}
	t.Run("valid", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow.Add(-time.Minute), "")
		id, err := v.Authenticate(r, body)
		if err != nil {
			t.Fatalf("%v\n%s", err, r.URL)
		}
		if id.Region != "us-west-2" || id.Account != testAccount {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		r, body := presign(t, "nope", testNow, "")
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeInvalidSignature, "does not match")
	})
	t.Run("tampered query", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow, "")
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "ListClusters", "DeleteCluster", 1)
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeInvalidSignature, "does not match")
	})
	t.Run("tampered signed header", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow, "")
		r.Header.Set("X-Amz-Target", "x")
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeInvalidSignature, "does not match")
	})
	t.Run("within expiry beyond skew", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow.Add(-time.Hour), "7200")
		if _, err := v.Authenticate(r, body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow.Add(-time.Hour), "60")
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeInvalidSignature, "Request has expired")
	})
	t.Run("bad expires", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow, "604801")
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeIncompleteSignature, "X-Amz-Expires")
	})
	t.Run("incomplete", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow, "")
		q := r.URL.Query()
		q.Del("X-Amz-Signature")
		q.Del("X-Amz-Date")
		r.URL.RawQuery = q.Encode()
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeIncompleteSignature, "AWS query-string parameters must include 'X-Amz-Signature', 'X-Amz-Date'.")
	})
	t.Run("other algorithm", func(t *testing.T) {
		r, body := presign(t, testSecret, testNow, "")
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256", 1)
		_, err := v.Authenticate(r, body)
		wantCode(t, err, ecs.CodeIncompleteSignature, "Unsupported AWS 'algorithm'")
	})
}

func TestNewValidates(t *testing.T) {
	good := Credential{AccessKeyID: "K", SecretAccessKey: "S", Account: testAccount}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no mode", Config{}, "mode"},
		{"bad mode", Config{Mode: "lax"}, "mode"},
		{"strict without keys", Config{Mode: Strict}, "at least one access key"},
		{"bad default account", Config{Mode: Dev, DefaultAccount: "12"}, "default account"},
		{"bad default region", Config{Mode: Dev, DefaultRegion: "US East"}, "default region"},
		{"empty key", Config{Mode: Strict, Credentials: []Credential{{SecretAccessKey: "s"}}}, "access key id"},
		{"no secret", Config{Mode: Strict, Credentials: []Credential{{AccessKeyID: "K"}}}, "no secret"},
		{"bad account", Config{Mode: Strict, Credentials: []Credential{{AccessKeyID: "K", SecretAccessKey: "s", Account: "x"}}}, "want 12 digits"},
		{"duplicate", Config{Mode: Strict, Credentials: []Credential{good, good}}, "more than once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want error containing %q", err, tc.want)
			}
		})
	}
	v, err := New(Config{Mode: Strict, Credentials: []Credential{{AccessKeyID: "K", SecretAccessKey: "S"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v.keys["K"].Account != DefaultAccount || v.cfg.MaxSkew != DefaultMaxSkew || v.cfg.DefaultRegion != DefaultRegion {
		t.Fatalf("defaults not applied: %+v %+v", v.cfg, v.keys)
	}
}
