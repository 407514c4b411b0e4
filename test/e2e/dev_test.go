package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/internal/testenv"
)

// TestDev: `ecsd dev` prints how to use it, answers the operator endpoints,
// accepts any well-formed signature (a 12-digit access key id selects the
// account) and wipes all state on POST /ecsd/reset.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	ctx := context.Background()
	// The in-process agent would register into (and re-create) the default
	// cluster, which these cluster counts do not expect; agent/node covers it.
	p := startECSD(t, ecsdOpts{Mode: "dev", Env: []string{"ECSD_AGENT=false"}})

	t.Run("quickstart", func(t *testing.T) {
		// The instructions are printed once serving; /healthz can answer a moment before.
		var out string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if out = p.Output(); strings.Contains(out, "/ecsd/reset") {
				break
			}
		}
		for _, want := range []string{
			"ECS API at " + p.URL,
			"export AWS_ACCESS_KEY_ID=",
			"aws ecs create-cluster --cluster-name demo --endpoint-url " + p.URL,
			"curl -X POST " + p.URL + "/ecsd/reset",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("ecsd dev output lacks %q; output:\n%s", want, out)
			}
		}
	})

	t.Run("operator endpoints", func(t *testing.T) {
		status, body, err := httpDo(http.MethodGet, p.URL+"/healthz")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /healthz: status %d err %v body %s", status, err, body)
		}
		var health struct{ Status string }
		if err := json.Unmarshal(body, &health); err != nil || health.Status != "ok" {
			t.Errorf("GET /healthz body = %s (err %v), want status ok", body, err)
		}
		status, body, err = httpDo(http.MethodGet, p.URL+"/version")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /version: status %d err %v body %s", status, err, body)
		}
		var v struct{ Version string }
		if err := json.Unmarshal(body, &v); err != nil || v.Version != buildVersion {
			t.Errorf("GET /version body = %s (err %v), want version %q (stamped with -ldflags)", body, err, buildVersion)
		}
		out, err := run(t, 30*time.Second, ".", baseEnv(), ecsdBin, "version")
		if err != nil || strings.TrimSpace(out) != "ecsd "+buildVersion {
			t.Errorf("ecsd version printed %q (err %v), want %q", out, err, "ecsd "+buildVersion)
		}
	})

	t.Run("account from access key", func(t *testing.T) {
		// Dev auth: any secret works; a 12-digit access key id is the account.
		client := testenv.NewClient(p.URL, "210987654321", "any-secret", "eu-west-1")
		out, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("acct")})
		if err != nil {
			t.Fatalf("create-cluster: %v", err)
		}
		if got, want := aws.ToString(out.Cluster.ClusterArn), "arn:aws:ecs:eu-west-1:210987654321:cluster/acct"; got != want {
			t.Errorf("cluster ARN = %q, want %q", got, want)
		}
	})

	t.Run("reset", func(t *testing.T) {
		client := testenv.NewClient(p.URL, "test", "test", "us-east-1")
		if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("wipe-me")}); err != nil {
			t.Fatalf("create-cluster: %v", err)
		}
		td := persistTaskDef()
		td.Family = aws.String("wipe-me")
		for range 2 {
			if _, err := client.RegisterTaskDefinition(ctx, td); err != nil {
				t.Fatalf("register-task-definition: %v", err)
			}
		}
		lc, err := client.ListClusters(ctx, &ecs.ListClustersInput{})
		if err != nil || len(lc.ClusterArns) != 1 {
			t.Fatalf("list-clusters before reset: %v, err %v; want one cluster", lc.ClusterArns, err)
		}

		status, body, err := httpDo(http.MethodPost, p.URL+"/ecsd/reset")
		if err != nil || status != http.StatusOK {
			t.Fatalf("POST /ecsd/reset: status %d err %v body %s", status, err, body)
		}

		lc, err = client.ListClusters(ctx, &ecs.ListClustersInput{})
		if err != nil || len(lc.ClusterArns) != 0 {
			t.Errorf("list-clusters after reset: %v, err %v; want none", lc.ClusterArns, err)
		}
		lf, err := client.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{})
		if err != nil || len(lf.Families) != 0 {
			t.Errorf("list-task-definition-families after reset: %v, err %v; want none", lf.Families, err)
		}
		// Reset wipes the revision counters too: the family starts again at 1.
		reg, err := client.RegisterTaskDefinition(ctx, td)
		if err != nil {
			t.Fatalf("register-task-definition after reset: %v", err)
		}
		if reg.TaskDefinition.Revision != 1 {
			t.Errorf("revision after reset = %d, want 1", reg.TaskDefinition.Revision)
		}
	})
}
