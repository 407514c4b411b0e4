package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// TestTerraformFargate applies the usual Fargate configuration (cluster with
// FARGATE/FARGATE_SPOT, a FARGATE task definition, a FARGATE service and a
// FARGATE_SPOT service waiting for steady state) against `ecsd dev`'s
// Fargate pool: apply, a no-change re-plan, destroy.
func TestTerraformFargate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	tf := needTool(t, "terraform")
	mirror := providerMirror(t)
	svcNeedDocker(t)
	cluster := "e2e-tffg-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	p := startECSD(t, ecsdOpts{Mode: "dev", Args: []string{"--agent=false", "--fargate-agent=true", "--fargate-agent-tmds-port", port}})
	t.Cleanup(func() {
		p.Stop(t)
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.amazonaws.ecs.cluster="+cluster).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
		}
	})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")

	work := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "terraform-fargate", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(terraformEnv(t, t.TempDir(), mirror, p.URL), "TF_VAR_cluster="+cluster, "TF_VAR_image="+testimage.Busybox)
	terraform := terraformCmd(t, tf, work, env)
	if _, code := terraform(2*time.Minute, "init", "-input=false"); code != 0 {
		t.Fatalf("terraform init exited %d (output above)", code)
	}
	if _, code := terraform(4*time.Minute, "apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform apply exited %d (output above)", code)
	}
	ctx := context.Background()
	ds, err := sdk.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"app", "spot"}})
	if err != nil || len(ds.Services) != 2 {
		t.Fatalf("describe-services: %v %+v", err, ds)
	}
	for _, s := range ds.Services {
		want := int32(2)
		if aws.ToString(s.ServiceName) == "spot" {
			want = 1
		}
		if s.RunningCount != want {
			t.Errorf("service %s: %d running, want %d", aws.ToString(s.ServiceName), s.RunningCount, want)
		}
	}
	lt, err := sdk.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster)})
	if err != nil || len(lt.TaskArns) != 3 {
		t.Fatalf("list-tasks: %v %+v", err, lt)
	}
	dt, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: lt.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	spot := 0
	for _, tk := range dt.Tasks {
		if tk.LaunchType != "FARGATE" || aws.ToString(tk.PlatformVersion) != "1.4.0" || tk.ContainerInstanceArn != nil {
			t.Errorf("task %s: launch type %s, platform %s, instance %v", aws.ToString(tk.TaskArn), tk.LaunchType, aws.ToString(tk.PlatformVersion), tk.ContainerInstanceArn)
		}
		if aws.ToString(tk.CapacityProviderName) == "FARGATE_SPOT" {
			spot++
		}
	}
	if spot != 1 {
		t.Errorf("%d tasks on FARGATE_SPOT, want the spot service's one", spot)
	}

	if out, code := terraform(3*time.Minute, "plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("terraform plan after apply exited %d, want 0 (no changes); the plan shows which attribute differs:\n%s", code, out)
	}
	if _, code := terraform(4*time.Minute, "destroy", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform destroy exited %d (output above)", code)
	}
	dc, err := sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	if err != nil || len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("after destroy: %v %+v; want the cluster INACTIVE", err, dc)
	}
}
