package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ecsd/ecsd/internal/testenv"
)

// strictEnv configures `ecsd server`'s one access key from the environment.
var strictEnv = []string{
	"ECSD_ACCESS_KEY_ID=AKIDE2ERESTART",
	"ECSD_SECRET_ACCESS_KEY=restart-secret",
	"ECSD_ACCOUNT_ID=444455556666",
}

// TestRestartAfterKill writes state through `ecsd server` (strict auth), kills
// the process with SIGKILL, starts it again on the same data dir and finds
// everything there, with revision numbers continuing.
func TestRestartAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	p := startECSD(t, ecsdOpts{Mode: "server", DataDir: dataDir, Env: strictEnv})
	client := testenv.NewClient(p.URL, "AKIDE2ERESTART", "restart-secret", "us-east-1")

	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName: aws.String("persist"),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}},
	}); err != nil {
		t.Fatalf("create-cluster: %v", err)
	}
	reg, err := client.RegisterTaskDefinition(ctx, persistTaskDef())
	if err != nil {
		t.Fatalf("register-task-definition: %v", err)
	}
	if reg.TaskDefinition.Revision != 1 {
		t.Fatalf("first revision = %d, want 1", reg.TaskDefinition.Revision)
	}

	// Strict mode: a wrong secret is refused, with a client error (never 5xx).
	bad := testenv.NewClient(p.URL, "AKIDE2ERESTART", "wrong-secret", "us-east-1")
	_, err = bad.ListClusters(ctx, &ecs.ListClustersInput{})
	if err == nil {
		t.Errorf("ecsd server accepted a request signed with the wrong secret")
	} else if status := httpStatus(err); status < 400 || status >= 500 {
		t.Errorf("wrong secret: HTTP status %d, want 4xx (%v)", status, err)
	}
	// The reset endpoint exists only in dev mode.
	if status, _, err := httpDo(http.MethodPost, p.URL+"/ecsd/reset"); err != nil || status == http.StatusOK {
		t.Errorf("POST /ecsd/reset on ecsd server: status %d err %v; want a refusal", status, err)
	}

	p.Kill(t)
	if _, _, err := httpDo(http.MethodGet, p.URL+"/healthz"); err == nil {
		t.Fatal("the killed server still answers")
	}

	p2 := startECSD(t, ecsdOpts{Mode: "server", DataDir: dataDir, Env: strictEnv})
	client = testenv.NewClient(p2.URL, "AKIDE2ERESTART", "restart-secret", "us-east-1")

	dc, err := client.DescribeClusters(ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"persist"},
		Include:  []types.ClusterField{types.ClusterFieldTags},
	})
	if err != nil {
		t.Fatalf("describe-clusters after restart: %v", err)
	}
	if len(dc.Clusters) != 1 {
		t.Fatalf("describe-clusters after restart: %d clusters, failures %+v", len(dc.Clusters), dc.Failures)
	}
	c := dc.Clusters[0]
	if aws.ToString(c.Status) != "ACTIVE" || aws.ToString(c.ClusterArn) != "arn:aws:ecs:us-east-1:444455556666:cluster/persist" {
		t.Errorf("cluster after restart: status %q ARN %q", aws.ToString(c.Status), aws.ToString(c.ClusterArn))
	}
	if got := tagMap(c.Tags); got["team"] != "platform" || len(got) != 1 {
		t.Errorf("cluster tags after restart = %v, want team=platform", got)
	}

	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("persist-web"),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		t.Fatalf("describe-task-definition after restart: %v", err)
	}
	d := td.TaskDefinition
	if d.Revision != 1 || d.Status != types.TaskDefinitionStatusActive || len(d.ContainerDefinitions) != 1 ||
		aws.ToString(d.TaskDefinitionArn) != aws.ToString(reg.TaskDefinition.TaskDefinitionArn) {
		t.Errorf("task definition after restart: ARN %q revision %d status %q containers %d; want %q, 1, ACTIVE, 1",
			aws.ToString(d.TaskDefinitionArn), d.Revision, d.Status, len(d.ContainerDefinitions), aws.ToString(reg.TaskDefinition.TaskDefinitionArn))
	}
	if got := tagMap(td.Tags); got["app"] != "persist" {
		t.Errorf("task definition tags after restart = %v, want app=persist", got)
	}

	reg2, err := client.RegisterTaskDefinition(ctx, persistTaskDef())
	if err != nil {
		t.Fatalf("register-task-definition after restart: %v", err)
	}
	if reg2.TaskDefinition.Revision != 2 {
		t.Errorf("revision after restart = %d, want 2", reg2.TaskDefinition.Revision)
	}
}

// TestServerRefusesToStartWithoutKeys: strict auth (the default of `ecsd server`)
// with no access keys configured is a configuration error, named clearly.
func TestServerRefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	out, err := run(t, 30*time.Second, ".", baseEnv(), ecsdBin, "server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	if err == nil {
		t.Fatal("ecsd server started with strict auth and no access keys")
	}
	if !strings.Contains(out, "ECSD_ACCESS_KEY_ID") || !strings.Contains(out, "--credentials-file") {
		t.Errorf("the error should say how to configure keys (ECSD_ACCESS_KEY_ID, --credentials-file); got:\n%s", out)
	}
}

func persistTaskDef() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("persist-web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:      aws.String("web"),
			Image:     aws.String("busybox:latest"),
			Essential: aws.Bool(true),
			Memory:    aws.Int32(128),
			PortMappings: []types.PortMapping{{
				ContainerPort: aws.Int32(8080), HostPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp,
			}},
		}},
		Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("persist")}},
	}
}

// httpStatus is the HTTP status of an SDK error (0 when there was no response).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
