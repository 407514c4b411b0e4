package apiserver_test

// The JSON 1.1 protocol edge under bad input, with raw HTTP requests (the SDK
// would refuse to send most of them). Dev-mode auth needs only a well-formed,
// recent signature.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
)

type protoReply struct {
	Status int
	Header http.Header
	Body   []byte
	// Type and Message are the error body's __type and message (empty on success).
	Type, Message string
}

// protoSend sends body to the API as op (the full X-Amz-Target is
// TargetPrefix.op; target overrides it when op is empty and target is not).
func protoSend(t *testing.T, env *testenv.Env, method, target string, body []byte) protoReply {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/"+now.Format("20060102")+"/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := protoReply{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: status %d with a body that is not a JSON error: %q", target, resp.StatusCode, b)
		}
		r.Type, r.Message = e.Type, e.Message
	}
	return r
}

func protoOp(t *testing.T, env *testenv.Env, op, body string) protoReply {
	t.Helper()
	return protoSend(t, env, http.MethodPost, ecs.TargetPrefix+"."+op, []byte(body))
}

// protoCheck asserts the headers every answer carries, and for errors that
// the header type and the body type agree.
func protoCheck(t *testing.T, what string, r protoReply) {
	t.Helper()
	if r.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("%s: no x-amzn-RequestId", what)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if r.Status == http.StatusOK {
		return
	}
	if r.Type == "" || r.Message == "" {
		t.Errorf("%s: status %d without __type and message: %s", what, r.Status, r.Body)
	}
	if h := r.Header.Get("X-Amzn-ErrorType"); h != r.Type {
		t.Errorf("%s: X-Amzn-ErrorType %q but __type %q", what, h, r.Type)
	}
}

func protoWant(t *testing.T, what string, r protoReply, status int, code string, parts ...string) {
	t.Helper()
	protoCheck(t, what, r)
	if r.Status != status || r.Type != code {
		t.Fatalf("%s: got %d %s (%s), want %d %s", what, r.Status, r.Type, r.Message, status, code)
	}
	for _, p := range parts {
		if !strings.Contains(r.Message, p) {
			t.Fatalf("%s: message %q does not mention %q", what, r.Message, p)
		}
	}
}

func TestProtocolBadRequests(t *testing.T) {
	env := testenv.Start(t)

	t.Run("unknown operation", func(t *testing.T) {
		protoWant(t, "unknown", protoOp(t, env, "DescribeUnicorns", "{}"), 400, ecs.CodeUnknownOperation)
		protoWant(t, "wrong prefix", protoSend(t, env, "POST", "AmazonEC2ContainerServiceV20991231.ListClusters", []byte("{}")), 400, ecs.CodeUnknownOperation)
		protoWant(t, "other service", protoSend(t, env, "POST", "Logs_20140328.DescribeLogGroups", []byte("{}")), 400, ecs.CodeUnknownOperation)
		protoWant(t, "prefix only", protoSend(t, env, "POST", ecs.TargetPrefix+".", []byte("{}")), 400, ecs.CodeUnknownOperation)
		protoWant(t, "op case", protoOp(t, env, "listclusters", "{}"), 400, ecs.CodeUnknownOperation)
	})
	t.Run("missing target", func(t *testing.T) {
		protoWant(t, "no target", protoSend(t, env, "POST", "", []byte("{}")), 400, ecs.CodeUnknownOperation)
	})
	t.Run("not POST", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			r := protoSend(t, env, m, ecs.TargetPrefix+".ListClusters", nil)
			protoCheck(t, m, r)
			if r.Status != 400 || r.Type == "" {
				t.Fatalf("%s: got %d %q", m, r.Status, r.Type)
			}
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		for _, body := range []string{`{"clusterName":`, `{]`, `not json`, `{"clusterName":"a",}`, `{} {}`, `{}}`, `{} ]`, `{"clusterName":"a"} x`, "\x00\x01"} {
			protoWant(t, body, protoOp(t, env, "CreateCluster", body), 400, ecs.CodeSerialization)
		}
	})
	t.Run("wrong types", func(t *testing.T) {
		cases := []struct{ op, body, field string }{
			{"CreateCluster", `{"clusterName": 5}`, "clusterName"},
			{"CreateCluster", `{"clusterName": {"a": 1}}`, "clusterName"},
			{"CreateCluster", `{"tags": {"k": "v"}}`, "tags"},
			{"CreateCluster", `{"tags": [{"key": 1}]}`, "key"},
			{"ListClusters", `{"maxResults": "10"}`, "maxResults"},
			{"ListClusters", `{"maxResults": 1.5}`, "maxResults"},
			{"ListClusters", `{"maxResults": 1e100}`, "maxResults"},
			{"ListAccountSettings", `{"effectiveSettings": "true"}`, "effectiveSettings"},
			{"TagResource", `{"resourceArn": ["a"], "tags": []}`, "resourceArn"},
			{"ListClusters", `[]`, "request body"},
			{"ListClusters", `"text"`, "request body"},
		}
		for _, tc := range cases {
			protoWant(t, tc.op+" "+tc.body, protoOp(t, env, tc.op, tc.body), 400, ecs.CodeSerialization, tc.field)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		body := `{"clusterName":"` + strings.Repeat("a", 3<<20) + `"}`
		protoWant(t, "3 MiB", protoOp(t, env, "CreateCluster", body), 413, ecs.CodeRequestEntityTooLarge)
	})
	t.Run("empty body is an empty input", func(t *testing.T) {
		r := protoOp(t, env, "ListClusters", "")
		protoCheck(t, "empty", r)
		if r.Status != 200 {
			t.Fatalf("ListClusters with no body: %d %s", r.Status, r.Body)
		}
	})
}

func TestProtocolMissingRequiredMember(t *testing.T) {
	env := testenv.Start(t)
	cases := []struct{ op, body, member string }{
		{"TagResource", `{}`, "resourceArn"},
		{"TagResource", `{"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/a"}`, "tags"},
		{"UntagResource", `{"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/a"}`, "tagKeys"},
		{"ListTagsForResource", `{}`, "resourceArn"},
		{"ListTagsForResource", `{"resourceArn": ""}`, "resourceArn"},
		{"PutAccountSetting", `{"value": "enabled"}`, "name"},
		{"PutAccountSetting", `{"name": "awsvpcTrunking"}`, "value"},
		{"PutAccountSettingDefault", `{"name": "awsvpcTrunking"}`, "value"},
		{"DeleteAccountSetting", `{}`, "name"},
		{"DescribeClusters", `{"include": ["NOPE"]}`, "include"},
		{"DeleteCluster", `{}`, "cluster"},
		{"RegisterTaskDefinition", `{"family": "f"}`, "containerDefinitions"},
	}
	for _, tc := range cases {
		protoWant(t, tc.op+" "+tc.body, protoOp(t, env, tc.op, tc.body), 400, ecs.CodeInvalidParameter, tc.member)
	}
}

// protoKnownCodes are the codes a client can map: the model's plus those AWS's
// JSON front end adds for every service.
func protoKnownCodes() map[string]bool {
	codes := map[string]bool{
		ecs.CodeUnknownOperation: true, ecs.CodeSerialization: true, ecs.CodeRequestEntityTooLarge: true,
		ecs.CodeMissingAuthenticationToken: true, ecs.CodeInvalidSignature: true, ecs.CodeUnrecognizedClient: true,
		ecs.CodeIncompleteSignature: true, ecs.CodeThrottling: true,
	}
	for _, op := range ecs.Operations {
		for _, c := range op.Errors {
			codes[c] = true
		}
	}
	return codes
}

// TestProtocolEveryOperation sends each of the model's operations an empty
// object and a broken body: each answers 200 with a JSON object, or a typed
// 4xx; never 404, never 5xx (clients retry those for seconds).
func TestProtocolEveryOperation(t *testing.T) {
	env := testenv.Start(t)
	known := protoKnownCodes()
	var names []string
	for name := range ecs.Operations {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) != 77 {
		t.Errorf("the model has %d operations; this test expects 77", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := protoOp(t, env, name, "{}")
			protoCheck(t, name, r)
			switch {
			case r.Status == http.StatusOK:
				var obj map[string]any
				if err := json.Unmarshal(r.Body, &obj); err != nil || obj == nil {
					t.Errorf("200 with a body that is not a JSON object: %q", r.Body)
				}
			case r.Status >= 400 && r.Status < 500 && r.Status != http.StatusNotFound:
				if !known[r.Type] {
					t.Errorf("%d %s is not an error code clients know: %s", r.Status, r.Type, r.Message)
				}
				if r.Type == ecs.CodeUnsupportedFeature && !strings.Contains(r.Message, name) {
					t.Errorf("UnsupportedFeatureException does not name the operation: %s", r.Message)
				}
				if !slices.Contains(ecs.Operations[name].Errors, r.Type) && r.Type != ecs.CodeUnsupportedFeature {
					t.Logf("note: %s is not among the errors the model declares for %s", r.Type, name)
				}
			default:
				t.Errorf("status %d (%s: %s)", r.Status, r.Type, r.Message)
			}
			// Unimplemented operations answer UnsupportedFeatureException
			// before decoding; implemented ones must refuse the body itself.
			broken := protoOp(t, env, name, `{"a":`)
			if r.Type == ecs.CodeUnsupportedFeature && broken.Type == ecs.CodeUnsupportedFeature {
				protoCheck(t, name+" broken body", broken)
				return
			}
			protoWant(t, name+" broken body", broken, 400, ecs.CodeSerialization)
		})
	}
}
