package auth_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/internal/testenv"
)

const (
	e2eKey     = "AKIDE2ETEST"
	e2eSecret  = "e2e/Secret+Key=="
	e2eAccount = "210987654321"
)

var authCodes = []string{
	"MissingAuthenticationTokenException", "IncompleteSignatureException",
	"InvalidSignatureException", "UnrecognizedClientException",
}

// TestStrictEndToEnd runs a control plane in strict mode and calls it with
// the official Go SDK and, when installed, the aws CLI v1 (botocore's signer).
func TestStrictEndToEnd(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Auth: &auth.Config{
		Mode:           auth.Strict,
		Credentials:    []auth.Credential{{AccessKeyID: e2eKey, SecretAccessKey: e2eSecret, Account: e2eAccount}},
		DefaultAccount: "123456789012",
		DefaultRegion:  "us-east-1",
		MaxSkew:        15 * time.Minute,
	}})
	ctx := context.Background()

	sdkCall := func(key, secret string) error {
		_, err := testenv.NewClient(env.URL, key, secret, "us-east-1").ListClusters(ctx, &ecs.ListClustersInput{})
		return err
	}
	t.Run("sdk correct secret", func(t *testing.T) {
		code := apiCode(sdkCall(e2eKey, e2eSecret))
		t.Logf("ListClusters with correct credentials: %q (empty: success)", code)
		if isAuthCode(code) {
			t.Fatalf("correct credentials rejected: %s", code)
		}
	})
	t.Run("sdk wrong secret", func(t *testing.T) {
		if code := apiCode(sdkCall(e2eKey, "wrong")); code != "InvalidSignatureException" {
			t.Fatalf("code = %q, want InvalidSignatureException", code)
		}
	})
	t.Run("sdk unknown key", func(t *testing.T) {
		if code := apiCode(sdkCall("AKIDNOBODY", e2eSecret)); code != "UnrecognizedClientException" {
			t.Fatalf("code = %q, want UnrecognizedClientException", code)
		}
	})

	t.Run("aws cli", func(t *testing.T) {
		if _, err := exec.LookPath("aws"); err != nil {
			if os.Getenv("ECSD_E2E_REQUIRED") == "1" {
				t.Fatal("aws CLI not on PATH and ECSD_E2E_REQUIRED=1")
			}
			t.Skip("aws CLI not on PATH")
		}
		out, err := awsCLI(t, env.URL, e2eKey, e2eSecret)
		t.Logf("aws ecs list-clusters (correct secret): err=%v\n%s", err, out)
		for _, c := range authCodes {
			if strings.Contains(out, c) {
				t.Fatalf("aws CLI with correct credentials rejected: %v\n%s", err, out)
			}
		}
		if err != nil && !strings.Contains(out, "An error occurred (") {
			t.Fatalf("aws CLI failed without an API answer: %v\n%s", err, out)
		}
		out, err = awsCLI(t, env.URL, e2eKey, "wrong-secret")
		if err == nil || !strings.Contains(out, "InvalidSignatureException") {
			t.Fatalf("aws CLI with a wrong secret: %v\n%s", err, out)
		}
	})
}

// awsCLI runs `aws ecs list-clusters` isolated from the user's AWS config.
func awsCLI(t *testing.T, endpoint, key, secret string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", "ecs", "list-clusters", "--endpoint-url", endpoint, "--region", "us-east-1")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

func isAuthCode(code string) bool {
	for _, c := range authCodes {
		if code == c {
			return true
		}
	}
	return strings.HasPrefix(code, "non-API error")
}
