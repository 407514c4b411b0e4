package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

// providerMirror finds the offline provider mirror (a tf-plugins directory within
// two levels of /, as on this machine kind) holding hashicorp/aws.
func providerMirror(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("find", "/", "-maxdepth", "2", "-type", "d", "-name", "tf-plugins").Output()
	for _, dir := range strings.Fields(string(out)) {
		if _, err := os.Stat(filepath.Join(dir, "registry.terraform.io", "hashicorp", "aws")); err == nil {
			return dir
		}
	}
	if required() {
		t.Fatal("no Terraform provider mirror (tf-plugins/registry.terraform.io/hashicorp/aws) found and ECSD_E2E_REQUIRED=1")
	}
	t.Skip("no Terraform provider mirror (tf-plugins/registry.terraform.io/hashicorp/aws) found")
	return ""
}

// terraformEnv is a clean environment for Terraform: our own CLI configuration
// (the offline mirror, nothing fetched) and no inherited TF_* settings.
func terraformEnv(t *testing.T, dir, mirror, endpoint string) []string {
	t.Helper()
	rc := filepath.Join(dir, "terraform.rc")
	cfg := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
`, mirror)
	if err := os.WriteFile(rc, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range baseEnv() {
		if !strings.HasPrefix(kv, "TF_") && !strings.HasPrefix(kv, "CHECKPOINT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"TF_CLI_CONFIG_FILE="+rc,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
		"TF_VAR_endpoint="+endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
}

// TestTerraform applies testdata/terraform (a cluster with a setting and tags, a
// Fargate task definition) with Terraform and the offline AWS provider against
// `ecsd server` with strict SigV4 checking; a second plan must show no changes
// (every attribute reads back as written) and destroy must succeed.
func TestTerraform(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	tf := needTool(t, "terraform")
	mirror := providerMirror(t)
	const account = "111122223333"
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")

	work := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "terraform", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	env := terraformEnv(t, t.TempDir(), mirror, p.URL)
	terraform := terraformCmd(t, tf, work, env)

	if _, code := terraform(2*time.Minute, "init", "-input=false"); code != 0 {
		t.Fatalf("terraform init exited %d (output above)", code)
	}
	if _, code := terraform(5*time.Minute, "apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform apply exited %d (output above)", code)
	}

	// What Terraform wrote is what ecsd stored.
	ctx := context.Background()
	dc, err := sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"e2e-tf"},
		Include:  []types.ClusterField{types.ClusterFieldSettings, types.ClusterFieldTags},
	})
	if err != nil {
		t.Fatalf("describe-clusters after apply: %v", err)
	}
	if len(dc.Clusters) != 1 {
		t.Fatalf("describe-clusters after apply: %d clusters, failures %+v", len(dc.Clusters), dc.Failures)
	}
	c := dc.Clusters[0]
	if got := aws.ToString(c.Status); got != "ACTIVE" {
		t.Errorf("cluster status = %q, want ACTIVE", got)
	}
	if got, want := aws.ToString(c.ClusterArn), "arn:aws:ecs:us-east-1:"+account+":cluster/e2e-tf"; got != want {
		t.Errorf("cluster ARN = %q, want %q", got, want)
	}
	if len(c.Settings) != 1 || c.Settings[0].Name != types.ClusterSettingNameContainerInsights || aws.ToString(c.Settings[0].Value) != "enabled" {
		t.Errorf("cluster settings = %+v, want containerInsights=enabled", c.Settings)
	}
	if got := tagMap(c.Tags); got["env"] != "e2e" || got["team"] != "platform" || len(got) != 2 {
		t.Errorf("cluster tags = %v, want env=e2e team=platform", got)
	}
	td, err := sdk.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("e2e-tf-web"),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		t.Fatalf("describe-task-definition after apply: %v", err)
	}
	if d := td.TaskDefinition; d.Revision != 1 || aws.ToString(d.Cpu) != "256" || aws.ToString(d.Memory) != "512" || d.NetworkMode != types.NetworkModeAwsvpc {
		t.Errorf("task definition after apply: revision %d cpu %q memory %q networkMode %q; want 1, 256, 512, awsvpc",
			d.Revision, aws.ToString(d.Cpu), aws.ToString(d.Memory), d.NetworkMode)
	}
	if got := tagMap(td.Tags); got["env"] != "e2e" || len(got) != 1 {
		t.Errorf("task definition tags = %v, want env=e2e", got)
	}

	// A second plan must find nothing to change.
	if out, code := terraform(3*time.Minute, "plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("terraform plan after apply exited %d, want 0 (no changes); the plan shows which attribute differs:\n%s", code, out)
	}

	if _, code := terraform(5*time.Minute, "destroy", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform destroy exited %d (output above)", code)
	}
	// Destroy deletes the cluster (INACTIVE, still describable) and deregisters
	// the task definition (INACTIVE).
	dc, err = sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"e2e-tf"}})
	if err != nil {
		t.Fatalf("describe-clusters after destroy: %v", err)
	}
	if len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("after destroy: clusters %+v failures %+v; want e2e-tf INACTIVE", dc.Clusters, dc.Failures)
	}
	td, err = sdk.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("e2e-tf-web:1")})
	if err != nil {
		t.Fatalf("describe-task-definition after destroy: %v", err)
	}
	if td.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
		t.Errorf("task definition status after destroy = %q, want INACTIVE", td.TaskDefinition.Status)
	}
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

// terraformCmd runs terraform in work with env, returning its output and exit
// code; anything but a clean exit code (a timeout, a missing binary) fails
// the test.
func terraformCmd(t *testing.T, tf, work string, env []string) func(timeout time.Duration, args ...string) (string, int) {
	return func(timeout time.Duration, args ...string) (string, int) {
		t.Helper()
		out, err := run(t, timeout, work, env, tf, append(args, "-no-color")...)
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out, 0
		case errors.As(err, &ee) && ee.ExitCode() > 0:
			return out, ee.ExitCode()
		default:
			t.Fatalf("terraform %s: %v", args[0], err)
			return out, -1
		}
	}
}
