package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testimage"
)

// TestFargateAgent is issue 6's proof of the agent side with the real binary
// and dockerd: `ecsd dev` brings a Fargate pool agent that no cluster lists;
// `ecsd agent --external` registers an instance with ecs.capability.external;
// a FARGATE task runs on the pool (under gVisor when dockerd offers runsc)
// and sees LaunchType FARGATE in its metadata; a FARGATE_SPOT task
// interrupted through the operator endpoint gets SIGTERM and stops with
// SpotInterruption.
func TestFargateAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	agentNeedDocker(t)
	ports := make([]string, 3)
	for i := range ports {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, ports[i], _ = strings.Cut(addr, ":")
	}
	p := startECSD(t, ecsdOpts{Mode: "dev", Args: []string{"--agent-tmds-port", ports[0], "--fargate-agent-tmds-port", ports[1]}})
	c := newAgentCLI(p.URL)
	instance := c.instanceARN(t)
	pool := fargateWaitPool(t, p)
	t.Cleanup(func() {
		p.Stop(t)
		// By instance only: the warm pause containers carry no cluster label.
		fargateRemoveInstanceContainers(t, instance)
		fargateRemoveInstanceContainers(t, pool)
	})
	t.Logf("local agent %s, Fargate pool agent %s", instance, pool)

	t.Run("pool instance is listed nowhere", func(t *testing.T) {
		var arns []string
		c.json(t, &arns, "ecs", "list-container-instances", "--cluster", "default", "--query", "containerInstanceArns")
		if len(arns) != 1 || arns[0] != instance {
			t.Errorf("list-container-instances of default = %v, want only %s", arns, instance)
		}
		var count int
		c.json(t, &count, "ecs", "describe-clusters", "--clusters", "default", "--query", "clusters[0].registeredContainerInstancesCount")
		if count != 1 {
			t.Errorf("registeredContainerInstancesCount = %d, want 1 (the pool instance is not counted)", count)
		}
		out, err := c.try(t, "ecs", "describe-container-instances", "--cluster", "default", "--container-instances", pool, "--query", "failures[0].reason", "--output", "text")
		if err != nil || strings.TrimSpace(out) != "MISSING" {
			t.Errorf("describe-container-instances of the pool instance in default = %q (%v), want failure MISSING", out, err)
		}
	})

	t.Run("external instance", func(t *testing.T) {
		token, err := os.ReadFile(filepath.Join(p.DataDir, "join-token"))
		if err != nil {
			t.Fatalf("join token: %v", err)
		}
		cmd := exec.Command(ecsdBin, "agent", "--server", p.URL, "--join-token", strings.TrimSpace(string(token)),
			"--data-dir", t.TempDir(), "--tmds-port", ports[2], "--external")
		cmd.Env = baseEnv()
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start ecsd agent --external: %v", err)
		}
		var ext []string
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				t.Logf("ecsd agent --external output:\n%s", out.Tail(16<<10))
			}
			if len(ext) == 1 {
				fargateRemoveInstanceContainers(t, ext[0])
			}
		})
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && len(ext) == 0; time.Sleep(200 * time.Millisecond) {
			l, err := c.sdk.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{
				Cluster: aws.String("default"), Filter: aws.String("attribute:ecs.capability.external exists")})
			if err == nil {
				ext = l.ContainerInstanceArns
			}
		}
		if len(ext) != 1 || ext[0] == instance {
			t.Fatalf("external instances = %v, want the new agent's", ext)
		}
		var names []string
		c.json(t, &names, "ecs", "describe-container-instances", "--cluster", "default", "--container-instances", ext[0],
			"--query", "containerInstances[0].attributes[].name")
		if !slices.Contains(names, "ecs.capability.external") {
			t.Errorf("attributes of the external instance = %v, want ecs.capability.external", names)
		}
		var all []string
		c.json(t, &all, "ecs", "list-container-instances", "--cluster", "default", "--query", "containerInstanceArns")
		if len(all) != 2 {
			t.Errorf("instances of default = %v, want the local and the external one", all)
		}
	})

	t.Run("FARGATE task and spot interruption", func(t *testing.T) {
		app := map[string]any{"name": "app", "image": testimage.Busybox, "essential": true,
			"command": []string{"sh", "-c", `trap 'echo got-SIGTERM; exit 0' TERM
until wget -qO /tmp/meta "$ECS_CONTAINER_METADATA_URI_V4/task"; do sleep 0.2; done
cat /tmp/meta; echo
echo ready
while :; do sleep 0.2; done`}}
		td, _ := json.Marshal(map[string]any{"family": "e2e-fargate", "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"},
			"cpu": "256", "memory": "512", "containerDefinitions": []any{app}})
		c.register(t, string(td))
		start := time.Now()
		out, err := c.try(t, "ecs", "run-task", "--cluster", "default", "--task-definition", "e2e-fargate", "--launch-type", "FARGATE",
			"--network-configuration", agentAwsvpcNet, "--query", "tasks[0].taskArn", "--output", "text")
		if err != nil {
			t.Fatalf("run-task --launch-type FARGATE: %v", err)
		}
		arn := strings.TrimSpace(out)
		task := c.wait(t, arn, "RUNNING", 60*time.Second)
		t.Logf("FARGATE task RUNNING %v after run-task started (CLI included)", time.Since(start).Round(time.Millisecond))
		if task.LaunchType != "FARGATE" || task.ContainerInstanceArn != nil {
			t.Errorf("task launchType %s containerInstanceArn %v, want FARGATE and none", task.LaunchType, aws.ToString(task.ContainerInstanceArn))
		}
		id := aws.ToString(task.Containers[0].RuntimeId)
		logs := agentDockerLogs(t, id, "ready")
		// (busybox wget under Debian's gVisor sometimes fails a read with
		// EAGAIN, hence the retries above and the search for the JSON line.)
		var meta struct{ LaunchType, TaskARN string }
		for _, line := range strings.Split(logs, "\n") {
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &meta) == nil {
				break
			}
		}
		if meta.LaunchType != "FARGATE" || meta.TaskARN != arn {
			t.Errorf("metadata from inside = %+v; logs:\n%s", meta, logs)
		}
		runtimes := agentDockerOut(t, "info", "--format", "{{json .Runtimes}}")
		if got := agentDockerOut(t, "inspect", "-f", "{{.HostConfig.Runtime}}", id); strings.Contains(runtimes, `"runsc"`) && got != "runsc" {
			t.Errorf("the FARGATE task's container runs with %q; dockerd offers runsc", got)
		} else {
			t.Logf("the FARGATE task's container runs with %s", got)
		}
		c.stop(t, arn)

		// FARGATE_SPOT, interrupted. As in ECS, a strategy names providers
		// associated with the cluster.
		c.aws(t, "ecs", "put-cluster-capacity-providers", "--cluster", "default", "--capacity-providers", "FARGATE", "FARGATE_SPOT",
			"--default-capacity-provider-strategy", "[]", "--query", "cluster.capacityProviders", "--output", "text")
		out, err = c.try(t, "ecs", "run-task", "--cluster", "default", "--task-definition", "e2e-fargate",
			"--capacity-provider-strategy", "capacityProvider=FARGATE_SPOT,weight=1",
			"--network-configuration", agentAwsvpcNet, "--query", "tasks[0].taskArn", "--output", "text")
		if err != nil {
			t.Fatalf("run-task on FARGATE_SPOT: %v", err)
		}
		arn = strings.TrimSpace(out)
		task = c.wait(t, arn, "RUNNING", 60*time.Second)
		if aws.ToString(task.CapacityProviderName) != "FARGATE_SPOT" {
			t.Errorf("capacityProviderName = %q, want FARGATE_SPOT", aws.ToString(task.CapacityProviderName))
		}
		id = aws.ToString(task.Containers[0].RuntimeId)
		agentDockerLogs(t, id, "ready")
		// The operator's CLI; the task ARN names its cluster.
		if out, err := run(t, 30*time.Second, "", append(baseEnv(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test"),
			ecsdBin, "spot", "interrupt", arn, "--endpoint", p.URL); err != nil {
			t.Fatalf("ecsd spot interrupt: %v\n%s", err, out)
		}
		agentDockerLogs(t, id, "got-SIGTERM")
		task = c.wait(t, arn, "STOPPED", 60*time.Second)
		if task.StopCode != "SpotInterruption" || aws.ToString(task.StoppedReason) != "Your Spot Task was interrupted." {
			t.Errorf("interrupted task stopCode %s reason %q", task.StopCode, aws.ToString(task.StoppedReason))
		}
		if ec := aws.ToInt32(task.Containers[0].ExitCode); ec != 0 {
			t.Errorf("exit code %d, want 0 (the SIGTERM trap)", ec)
		}

		// A service on FARGATE_SPOT: its interrupted task is replaced, on Spot.
		ctx := context.Background()
		if _, err := c.sdk.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("default"), ServiceName: aws.String("e2e-spot"),
			TaskDefinition: aws.String("e2e-fargate"), DesiredCount: aws.Int32(1),
			CapacityProviderStrategy: []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}},
			NetworkConfiguration:     &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"subnet-0123456789abcdef0"}}},
		}); err != nil {
			t.Fatalf("create-service on FARGATE_SPOT: %v", err)
		}
		w := ecs.NewServicesStableWaiter(c.sdk, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
		if err := w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("default"), Services: []string{"e2e-spot"}}, 90*time.Second); err != nil {
			t.Fatalf("spot service not stable: %v", err)
		}
		lt, err := c.sdk.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("default"), ServiceName: aws.String("e2e-spot")})
		if err != nil || len(lt.TaskArns) != 1 {
			t.Fatalf("service tasks: %v %v", lt, err)
		}
		victim := lt.TaskArns[0]
		task = c.wait(t, victim, "RUNNING", 60*time.Second)
		id = aws.ToString(task.Containers[0].RuntimeId)
		agentDockerLogs(t, id, "ready")
		if out, err := run(t, 30*time.Second, "", append(baseEnv(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test"),
			ecsdBin, "spot", "interrupt", victim, "--endpoint", p.URL); err != nil {
			t.Fatalf("ecsd spot interrupt: %v\n%s", err, out)
		}
		agentDockerLogs(t, id, "got-SIGTERM")
		if task = c.wait(t, victim, "STOPPED", 60*time.Second); task.StopCode != "SpotInterruption" {
			t.Errorf("the service's interrupted task: stopCode %s", task.StopCode)
		}
		var replacement string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && replacement == ""; time.Sleep(200 * time.Millisecond) {
			lt, err := c.sdk.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("default"), ServiceName: aws.String("e2e-spot")})
			if err == nil && len(lt.TaskArns) == 1 && lt.TaskArns[0] != victim {
				replacement = lt.TaskArns[0]
			}
		}
		if replacement == "" {
			t.Fatal("the service did not replace its interrupted task within 60s")
		}
		task = c.wait(t, replacement, "RUNNING", 60*time.Second)
		if aws.ToString(task.CapacityProviderName) != "FARGATE_SPOT" {
			t.Errorf("replacement on %q, want FARGATE_SPOT", aws.ToString(task.CapacityProviderName))
		}
		if _, err := c.sdk.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("default"), Service: aws.String("e2e-spot"), Force: aws.Bool(true)}); err != nil {
			t.Errorf("delete-service: %v", err)
		}
		c.wait(t, replacement, "STOPPED", 60*time.Second)
	})
}

// fargateWaitPool waits for ecsd dev to report its Fargate pool agent and
// returns the pool instance's ARN.
func fargateWaitPool(t *testing.T, p *ecsdProc) string {
	t.Helper()
	const marker = "Fargate pool agent: instance "
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out := p.Output()
		if i := strings.Index(out, marker); i >= 0 {
			arn, _, _ := strings.Cut(out[i+len(marker):], "\n")
			if strings.Contains(arn, ":container-instance/~fargate/") {
				return strings.TrimSpace(arn)
			}
		}
	}
	t.Fatalf("ecsd dev did not report a connected Fargate pool agent within 60s; output:\n%s", p.Output())
	return ""
}

// fargateRemoveInstanceContainers removes every container an instance left.
func fargateRemoveInstanceContainers(t *testing.T, instanceARN string) {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=ecsd.instance="+instanceARN).Output()
	if err != nil {
		return
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
}
