package e2e

import (
	"testing"
	"time"
)

// awsCLIEnv is a clean environment for the aws CLI: static test credentials and
// nothing read from the user's files or a metadata service.
func awsCLIEnv(keyID, secret string) []string {
	return append(baseEnv(),
		"AWS_ACCESS_KEY_ID="+keyID,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
}

// TestCLITaskDefinitions runs cli_taskdef.sh — the task definition lifecycle,
// tags, Fargate size validation and cluster deletion with the real aws CLI —
// against `ecsd server` with strict SigV4 checking, so every call also proves
// the CLI's signatures verify.
func TestCLITaskDefinitions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	bash := needTool(t, "bash")
	const account = "111122223333"
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}})
	env := append(awsCLIEnv("test", "test"), "ENDPOINT="+p.URL, "ACCOUNT="+account)
	if _, err := run(t, 5*time.Minute, ".", env, bash, "cli_taskdef.sh"); err != nil {
		t.Fatalf("cli_taskdef.sh failed (its output above names the step): %v", err)
	}
}
