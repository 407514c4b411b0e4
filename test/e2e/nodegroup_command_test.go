package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/internal/testenv"
)

// The command provisioner's contract, played by two shell scripts the way an
// operator's would: launch starts `ecsd agent` as a "machine" and prints its
// id; terminate ends it by that id.
const (
	ngLaunchScript = `#!/bin/sh
set -eu
dir="$E2E_WORK/$ECSD_NODE_ID"
mkdir -p "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "$E2E_ECSD" agent --server "$ECSD_SERVER" --cluster "$ECSD_CLUSTER" --join-token "$ECSD_JOIN_TOKEN" \
  --data-dir "$dir" --cpu "$ECSD_CPU" --memory "$ECSD_MEMORY" --instance-type "$ECSD_INSTANCE_TYPE" \
  --availability-zone "$ECSD_AVAILABILITY_ZONE" --node-group "$ECSD_NODE_GROUP" --node-id "$ECSD_NODE_ID" \
  --tmds-port "$port" </dev/null >"$dir/agent.log" 2>&1 &
echo $! >"$dir/pid"
echo "machine-$ECSD_NODE_ID"
`
	ngTerminateScript = `#!/bin/sh
set -eu
case "$ECSD_PROVIDER_ID" in machine-*) ;; *) echo "unknown machine $ECSD_PROVIDER_ID" >&2; exit 1 ;; esac
kill "$(cat "$E2E_WORK/$ECSD_NODE_ID/pid")"
`
)

// TestNodeGroupCommandProvisioner runs a node group through operator
// scripts: the group scales out to two machines whose agents register as its
// nodes, and back to zero, each machine ended by the terminate script.
func TestNodeGroupCommandProvisioner(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	placementNeedDocker(t)
	needTool(t, "python3")
	work := t.TempDir()
	launch, terminate := filepath.Join(work, "launch.sh"), filepath.Join(work, "terminate.sh")
	for path, body := range map[string]string{launch: ngLaunchScript, terminate: ngTerminateScript} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cluster := "e2e-ngcmd-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "E2E_WORK=" + work, "E2E_ECSD=" + ecsdBin,
	}, Args: []string{"--provisioner", "command", "--provisioner-launch-command", launch, "--provisioner-terminate-command", terminate}})
	t.Cleanup(func() {
		// Whatever the outcome, no machine outlives the test.
		pids, _ := filepath.Glob(filepath.Join(work, "*", "pid"))
		for _, f := range pids {
			if b, err := os.ReadFile(f); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	ctx := context.Background()
	if _, err := sdk.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	cliEnv := append(baseEnv(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "ECSD_ENDPOINT="+p.URL)
	if out, err := run(t, 2*time.Minute, ".", cliEnv, ecsdBin, "nodegroup", "create", "machines", "--cluster", cluster,
		"--max", "2", "--desired", "2", "--instance-type", "ecsd.small", "--wait", "90s"); err != nil {
		t.Fatalf("nodegroup create --wait: %v\n%s", err, out)
	}
	g := capacityDescribeGroup(t, p.URL, "machines")
	if len(g.Nodes) != 2 {
		t.Fatalf("nodes %+v", g.Nodes)
	}
	ci, err := sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
	if err != nil || len(ci.ContainerInstanceArns) != 2 {
		t.Fatalf("the machines' instances: %v %v", ci, err)
	}
	var pids []int
	for _, n := range g.Nodes {
		b, err := os.ReadFile(filepath.Join(work, n.ID, "pid"))
		if err != nil {
			t.Fatalf("node %s was not launched by the script: %v", n.ID, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		pids = append(pids, pid)
	}

	if out, err := run(t, 2*time.Minute, ".", cliEnv, ecsdBin, "nodegroup", "update", "machines", "--desired", "0", "--wait", "90s"); err != nil {
		t.Fatalf("nodegroup update --desired 0 --wait: %v\n%s", err, out)
	}
	placementEventually(t, 30*time.Second, "the machines' agents ended by the terminate script", func() string {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Sprintf("agent %d still runs", pid)
			}
		}
		return ""
	})
	d, err := sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: ci.ContainerInstanceArns})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range d.ContainerInstances {
		if aws.ToString(in.Status) != "INACTIVE" {
			t.Errorf("instance %s is %s after its machine was removed, want INACTIVE", aws.ToString(in.ContainerInstanceArn), aws.ToString(in.Status))
		}
	}
}
