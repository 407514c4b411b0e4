package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// agentCLI drives the aws CLI v1 against one ecsd endpoint; the SDK client only
// polls (a CLI call costs most of a second of CPU here).
type agentCLI struct {
	url string
	env []string
	sdk *ecs.Client
}

func newAgentCLI(url string) *agentCLI {
	return &agentCLI{
		url: url,
		env: append(awsCLIEnv("test", "test"), "AWS_DEFAULT_REGION=us-east-1"),
		sdk: testenv.NewClient(url, "test", "test", "us-east-1"),
	}
}

// aws runs one CLI command and fails the test when it fails.
func (c *agentCLI) aws(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.try(t, args...)
	if err != nil {
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *agentCLI) try(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append([]string{"--endpoint-url", c.url}, args...)
	return run(t, 2*time.Minute, ".", c.env, "aws", args...)
}

// json runs a CLI command with JSON output and decodes it into v.
func (c *agentCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := c.aws(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("aws %s: output is not JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
}

// register registers a task definition given as the CLI's input JSON.
func (c *agentCLI) register(t *testing.T, input string) {
	t.Helper()
	c.aws(t, "ecs", "register-task-definition", "--cli-input-json", input, "--query", "taskDefinition.taskDefinitionArn", "--output", "text")
}

// runTask runs one task of family and returns its ARN.
func (c *agentCLI) runTask(t *testing.T, family string, extra ...string) string {
	t.Helper()
	var out struct {
		Tasks    []struct{ TaskArn string }
		Failures []struct{ Arn, Reason string }
	}
	c.json(t, &out, append([]string{"ecs", "run-task", "--cluster", "default", "--task-definition", family}, extra...)...)
	if len(out.Tasks) != 1 || len(out.Failures) != 0 {
		t.Fatalf("run-task %s: tasks %v failures %v, want one task", family, out.Tasks, out.Failures)
	}
	return out.Tasks[0].TaskArn
}

// wait polls DescribeTasks until lastStatus is status (a task that reaches
// STOPPED while RUNNING is awaited fails at once).
func (c *agentCLI) wait(t *testing.T, arn, status string, timeout time.Duration) types.Task {
	t.Helper()
	var last types.Task
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := c.sdk.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: []string{arn}})
		if err != nil || len(out.Tasks) != 1 {
			continue
		}
		last = out.Tasks[0]
		got := aws.ToString(last.LastStatus)
		if got == status {
			return last
		}
		if got == "STOPPED" {
			t.Fatalf("task %s stopped while waiting for %s: stopCode %s reason %q containers %s", arn, status, last.StopCode, aws.ToString(last.StoppedReason), agentContainersString(last))
		}
	}
	t.Fatalf("task %s not %s within %s; last lastStatus %s", arn, status, timeout, aws.ToString(last.LastStatus))
	return last
}

func agentContainersString(task types.Task) string {
	var b strings.Builder
	for _, c := range task.Containers {
		fmt.Fprintf(&b, "[%s %s exit=%v reason=%q] ", aws.ToString(c.Name), aws.ToString(c.LastStatus), aws.ToInt32(c.ExitCode), aws.ToString(c.Reason))
	}
	return b.String()
}

// stop stops a task with the CLI and waits (quietly) for STOPPED.
func (c *agentCLI) stop(t *testing.T, arn string) types.Task {
	t.Helper()
	c.aws(t, "ecs", "stop-task", "--cluster", "default", "--task", arn, "--query", "task.desiredStatus", "--output", "text")
	return c.wait(t, arn, "STOPPED", 60*time.Second)
}

// taskdef is a one-container task definition as the CLI's input JSON.
func agentTaskdef(family, network string, containers ...map[string]any) string {
	in := map[string]any{"family": family, "containerDefinitions": containers}
	if network != "" {
		in["networkMode"] = network
	}
	b, _ := json.Marshal(in)
	return string(b)
}

// busybox is a container definition of the local test image.
func agentBusybox(name string, command ...string) map[string]any {
	c := map[string]any{"name": name, "image": testimage.Busybox, "memory": 32, "essential": true,
		"linuxParameters": map[string]any{"initProcessEnabled": true}}
	if len(command) > 0 {
		c["command"] = command
	}
	return c
}

const agentAwsvpcNet = "awsvpcConfiguration={subnets=[subnet-0123456789abcdef0]}"

// httpServer serves text on port 8080 from busybox httpd.
func agentHTTPServer(text string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 8080 -h /www"}
}

// getUntil GETs url until it answers 200 (a server needs a moment after RUNNING).
func agentGetUntil(t *testing.T, url string) string {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		status, body, err := httpDo(http.MethodGet, url)
		if err == nil && status == http.StatusOK {
			return string(body)
		}
		lastErr = fmt.Errorf("status %d err %v", status, err)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// dockerOut runs the docker CLI and returns its trimmed output.
func agentDockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, time.Minute, ".", baseEnv(), "docker", args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

// dockerLogs is a container's output, polled until it contains want.
func agentDockerLogs(t *testing.T, id, want string) string {
	t.Helper()
	var out []byte
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, _ = exec.Command("docker", "logs", id).CombinedOutput()
		if strings.Contains(string(out), want) {
			return string(out)
		}
	}
	t.Fatalf("docker logs %s lacks %q:\n%s", id, want, out)
	return ""
}

// removeContainers removes (by ID) the containers an agent instance left
// behind in a cluster.
func agentRemoveContainers(t *testing.T, cluster, instanceARN string) {
	t.Helper()
	if instanceARN == "" {
		return
	}
	// By instance only: warm pause containers carry no cluster label.
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=ecsd.instance="+instanceARN).Output()
	if err != nil {
		t.Logf("docker ps for cleanup: %v", err)
		return
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		t.Logf("removing %d leftover containers of %s", len(ids), instanceARN)
		_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
}

// needDocker skips (or fails under ECSD_E2E_REQUIRED=1) without a docker CLI
// and an answering daemon.
func agentNeedDocker(t *testing.T) {
	t.Helper()
	needTool(t, "docker")
	if err := exec.Command("docker", "version").Run(); err != nil {
		if required() {
			t.Fatalf("dockerd is not answering and ECSD_E2E_REQUIRED=1: %v", err)
		}
		t.Skipf("dockerd is not answering (set ECSD_E2E_REQUIRED=1 to make this a failure): %v", err)
	}
}

// instanceARN waits for the (single) agent to register in the default cluster.
func (c *agentCLI) instanceARN(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := c.sdk.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{Cluster: aws.String("default")})
		if err == nil && len(out.ContainerInstanceArns) == 1 {
			d, err := c.sdk.DescribeContainerInstances(context.Background(), &ecs.DescribeContainerInstancesInput{
				Cluster: aws.String("default"), ContainerInstances: out.ContainerInstanceArns})
			if err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected {
				return out.ContainerInstanceArns[0]
			}
		}
	}
	t.Fatal("no connected container instance in the default cluster within 60s")
	return ""
}

// TestAgentDev is issue 3's proof with the real aws CLI against `ecsd dev`
// and its in-process agent on the real dockerd: every subtest is a task.
func TestAgentDev(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	agentNeedDocker(t)
	tmdsAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, tmdsPort, _ := strings.Cut(tmdsAddr, ":")
	p := startECSD(t, ecsdOpts{Mode: "dev", Args: []string{"--agent-tmds-port", tmdsPort}})
	c := newAgentCLI(p.URL)
	instance := c.instanceARN(t)
	// Registered after startECSD's, so this runs first: the ecsd process has
	// stopped its tasks' containers' owner; what is left is removed by ID.
	t.Cleanup(func() {
		p.Stop(t)
		agentRemoveContainers(t, "default", instance)
	})

	t.Run("bridge host port and stop", func(t *testing.T) {
		t.Parallel()
		web := agentBusybox("web", agentHTTPServer("hello-bridge")...)
		web["portMappings"] = []map[string]any{{"containerPort": 8080, "hostPort": 0}}
		c.register(t, agentTaskdef("e2e-bridge", "bridge", web))
		arn := c.runTask(t, "e2e-bridge")
		c.aws(t, "ecs", "wait", "tasks-running", "--cluster", "default", "--tasks", arn)
		port := strings.TrimSpace(c.aws(t, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn,
			"--query", "tasks[0].containers[0].networkBindings[0].hostPort", "--output", "text"))
		if body := agentGetUntil(t, "http://127.0.0.1:"+port+"/"); strings.TrimSpace(body) != "hello-bridge" {
			t.Errorf("GET through host port %s = %q, want hello-bridge", port, body)
		}
		c.aws(t, "ecs", "stop-task", "--cluster", "default", "--task", arn, "--reason", "e2e done")
		c.aws(t, "ecs", "wait", "tasks-stopped", "--cluster", "default", "--tasks", arn)
		var d struct {
			Tasks []struct{ LastStatus, StopCode, StoppedReason string }
		}
		c.json(t, &d, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn)
		if len(d.Tasks) != 1 || d.Tasks[0].LastStatus != "STOPPED" || d.Tasks[0].StopCode != "UserInitiated" || d.Tasks[0].StoppedReason != "e2e done" {
			t.Errorf("stopped task = %+v, want STOPPED, stopCode UserInitiated, reason %q", d.Tasks, "e2e done")
		}
	})

	t.Run("awsvpc private IP and DNS name", func(t *testing.T) {
		t.Parallel()
		c.register(t, agentTaskdef("e2e-awsvpc", "awsvpc", agentBusybox("web", agentHTTPServer("hello-awsvpc")...)))
		arn := c.runTask(t, "e2e-awsvpc", "--network-configuration", agentAwsvpcNet)
		c.aws(t, "ecs", "wait", "tasks-running", "--cluster", "default", "--tasks", arn)
		var ips, names [][]string
		c.json(t, &ips, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn,
			"--query", "tasks[].attachments[].details[?(name=='privateIPv4Address')].value")
		c.json(t, &names, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn,
			"--query", "tasks[].attachments[].details[?(name=='privateDnsName')].value")
		// ECS reports one ENI attachment per awsvpc task: the one RunTask
		// created (PRECREATED) becomes ATTACHED with the task's address.
		if len(ips) != 1 || len(names) != 1 {
			c.aws(t, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn, "--query", "tasks[].attachments", "--output", "json")
			t.Errorf("the awsvpc task has %d attachments (privateIPv4Address query = %v), want exactly one ElasticNetworkInterface attachment", len(ips), ips)
		}
		var subnets []string
		c.json(t, &subnets, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn,
			"--query", "tasks[].attachments[].details[?(name=='subnetId')].value[]")
		if subnets = slices.Compact(subnets); len(subnets) != 1 || subnets[0] != "subnet-0123456789abcdef0" {
			t.Errorf("attachment subnetId values = %v, want only the requested subnet-0123456789abcdef0", subnets)
		}
		ip, name := slices.Concat(ips...), slices.Concat(names...)
		if len(ip) != 1 || ip[0] == "" {
			t.Fatalf("privateIPv4Address query = %v, want one address", ips)
		}
		if len(name) != 1 || !strings.HasPrefix(name[0], "ip-") {
			t.Errorf("privateDnsName query = %v, want one ip-... name", names)
		}
		if body := agentGetUntil(t, "http://"+ip[0]+":8080/"); strings.TrimSpace(body) != "hello-awsvpc" {
			t.Errorf("GET through private IP %s = %q, want hello-awsvpc", ip[0], body)
		}
		if task := c.stop(t, arn); task.StopCode != types.TaskStopCodeUserInitiated {
			t.Errorf("stopCode = %s, want UserInitiated", task.StopCode)
		}
	})

	t.Run("essential container exits 3", func(t *testing.T) {
		t.Parallel()
		c.register(t, agentTaskdef("e2e-exit3", "", agentBusybox("main", "sh", "-c", "sleep 1; exit 3")))
		arn := c.runTask(t, "e2e-exit3")
		c.wait(t, arn, "STOPPED", 60*time.Second)
		var d struct {
			Tasks []struct {
				StopCode   string
				Containers []struct {
					ExitCode *int
				}
			}
		}
		c.json(t, &d, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn)
		if len(d.Tasks) != 1 || d.Tasks[0].StopCode != "EssentialContainerExited" || len(d.Tasks[0].Containers) != 1 ||
			d.Tasks[0].Containers[0].ExitCode == nil || *d.Tasks[0].Containers[0].ExitCode != 3 {
			t.Errorf("describe-tasks = %+v, want stopCode EssentialContainerExited and exitCode 3", d.Tasks)
		}
	})

	t.Run("bad image", func(t *testing.T) {
		t.Parallel()
		bad := agentBusybox("main")
		bad["image"] = "127.0.0.1:1/nope:latest"
		c.register(t, agentTaskdef("e2e-badimage", "", bad))
		arn := c.runTask(t, "e2e-badimage")
		c.wait(t, arn, "STOPPED", 60*time.Second)
		var d struct {
			Tasks []struct {
				StopCode   string
				Containers []struct{ Reason string }
			}
		}
		c.json(t, &d, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn)
		if len(d.Tasks) != 1 || d.Tasks[0].StopCode != "TaskFailedToStart" || len(d.Tasks[0].Containers) != 1 ||
			!strings.Contains(d.Tasks[0].Containers[0].Reason, "CannotPullContainerError") {
			t.Errorf("describe-tasks = %+v, want stopCode TaskFailedToStart and a CannotPullContainerError reason", d.Tasks)
		}
	})

	t.Run("dependsOn HEALTHY", func(t *testing.T) {
		t.Parallel()
		db := agentBusybox("db", "sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600")
		db["healthCheck"] = map[string]any{"command": []string{"CMD-SHELL", "test -f /tmp/ready"}, "interval": 5, "timeout": 2, "retries": 3}
		app := agentBusybox("app", "sleep", "3600")
		app["dependsOn"] = []map[string]any{{"containerName": "db", "condition": "HEALTHY"}}
		c.register(t, agentTaskdef("e2e-depends", "", db, app))
		arn := c.runTask(t, "e2e-depends")
		task := c.wait(t, arn, "RUNNING", 60*time.Second)
		ids := map[string]string{}
		for _, ct := range task.Containers {
			ids[aws.ToString(ct.Name)] = aws.ToString(ct.RuntimeId)
			if aws.ToString(ct.Name) == "db" && ct.HealthStatus != types.HealthStatusHealthy {
				t.Errorf("db healthStatus = %s while the task is RUNNING, want HEALTHY", ct.HealthStatus)
			}
		}
		// The db's first passing health check must end before the app starts.
		healthy := agentDockerOut(t, "inspect", "--format", `{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End.Format "2006-01-02T15:04:05.000000000Z07:00"}} {{end}}{{end}}`, ids["db"])
		appStart := agentDockerOut(t, "inspect", "--format", `{{.State.StartedAt}}`, ids["app"])
		h, err1 := time.Parse(time.RFC3339Nano, strings.Fields(healthy + " x")[0])
		s, err2 := time.Parse(time.RFC3339Nano, appStart)
		if err1 != nil || err2 != nil {
			t.Fatalf("parse times: health %q (%v), app start %q (%v)", healthy, err1, appStart, err2)
		}
		t.Logf("db first healthy at %s, app started at %s", h.Format(time.RFC3339Nano), s.Format(time.RFC3339Nano))
		if s.Before(h) {
			t.Errorf("app started at %s, before db was first healthy at %s", s, h)
		}
		c.stop(t, arn)
	})

	t.Run("command and environment overrides", func(t *testing.T) {
		t.Parallel()
		main := agentBusybox("main", "sh", "-c", "echo definition-command; exec sleep 3600")
		main["environment"] = []map[string]string{{"name": "GREETING", "value": "from-definition"}, {"name": "KEPT", "value": "kept"}}
		c.register(t, agentTaskdef("e2e-overrides", "", main))
		overrides := `{"containerOverrides":[{"name":"main","command":["sh","-c","echo \"cmd=override greeting=$GREETING kept=$KEPT extra=$EXTRA\"; exec sleep 3600"],"environment":[{"name":"GREETING","value":"from-override"},{"name":"EXTRA","value":"x1"}]}]}`
		arn := c.runTask(t, "e2e-overrides", "--overrides", overrides)
		task := c.wait(t, arn, "RUNNING", 60*time.Second)
		logs := agentDockerLogs(t, aws.ToString(task.Containers[0].RuntimeId), "cmd=override")
		if want := "cmd=override greeting=from-override kept=kept extra=x1"; !strings.Contains(logs, want) || strings.Contains(logs, "definition-command") {
			t.Errorf("container output %q, want %q", logs, want)
		}

		// The seeds' idiom: every task's ARN through xargs into describe-tasks.
		out, err := run(t, 2*time.Minute, ".", append(c.env, "ENDPOINT="+p.URL), "bash", "-c",
			`set -o pipefail; aws --endpoint-url "$ENDPOINT" ecs list-tasks --cluster default --query taskArns --output text | tr '\t' ' ' | xargs aws --endpoint-url "$ENDPOINT" ecs describe-tasks --cluster default --query 'tasks[].taskArn' --output text --tasks`)
		if err != nil || !strings.Contains(out, arn) {
			t.Errorf("list-tasks | xargs describe-tasks: err %v, output lacks %s", err, arn)
		}
		c.stop(t, arn)
	})

	t.Run("task metadata endpoint v4", func(t *testing.T) {
		t.Parallel()
		c.register(t, agentTaskdef("e2e-tmds", "bridge", agentBusybox("main", "sh", "-c", `wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task"; echo; echo END-OF-METADATA; exec sleep 3600`)))
		arn := c.runTask(t, "e2e-tmds")
		task := c.wait(t, arn, "RUNNING", 60*time.Second)
		logs := agentDockerLogs(t, aws.ToString(task.Containers[0].RuntimeId), "END-OF-METADATA")
		body, _, _ := strings.Cut(logs, "END-OF-METADATA")
		var md struct{ TaskARN, Cluster, Family string }
		if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &md); err != nil {
			t.Fatalf("metadata /task is not JSON (%v):\n%s", err, logs)
		}
		if md.TaskARN != arn || md.Family != "e2e-tmds" {
			t.Errorf("metadata /task: TaskARN %q Family %q, want %q and e2e-tmds", md.TaskARN, md.Family, arn)
		}
		c.stop(t, arn)
	})

	t.Run("image from a loopback registry", func(t *testing.T) {
		t.Parallel()
		image := agentPushToLoopbackRegistry(t)
		main := agentBusybox("main", "sleep", "3600")
		main["image"] = image
		c.register(t, agentTaskdef("e2e-registry", "", main))
		arn := c.runTask(t, "e2e-registry")
		task := c.wait(t, arn, "RUNNING", 90*time.Second)
		if task.PullStartedAt == nil || task.PullStoppedAt == nil {
			t.Errorf("pullStartedAt %v pullStoppedAt %v: the agent should have pulled %s", task.PullStartedAt, task.PullStoppedAt, image)
		}
		if got := agentDockerOut(t, "inspect", "--format", "{{.Config.Image}}", aws.ToString(task.Containers[0].RuntimeId)); got != image {
			t.Errorf("container image = %q, want %q", got, image)
		}
		c.stop(t, arn)
		_ = exec.Command("docker", "rmi", image).Run()
	})

	t.Run("fits nowhere", func(t *testing.T) {
		t.Parallel()
		big := agentBusybox("main", "sleep", "3600")
		big["memory"] = 64 << 20 // MiB: far beyond any machine
		c.register(t, agentTaskdef("e2e-toobig", "", big))
		var out struct {
			Tasks    []struct{ TaskArn string }
			Failures []struct{ Arn, Reason string }
		}
		c.json(t, &out, "ecs", "run-task", "--cluster", "default", "--task-definition", "e2e-toobig")
		if len(out.Tasks) != 0 || len(out.Failures) != 1 || out.Failures[0].Reason != "RESOURCE:MEMORY" || out.Failures[0].Arn != instance {
			t.Errorf("run-task = %+v, want no task and one failure RESOURCE:MEMORY for %s", out, instance)
		}
		var stuck []string
		c.json(t, &stuck, "ecs", "list-tasks", "--cluster", "default", "--family", "e2e-toobig", "--query", "taskArns")
		if len(stuck) != 0 {
			t.Errorf("list-tasks --family e2e-toobig = %v, want none (nothing left in PROVISIONING)", stuck)
		}
	})
}

// pushToLoopbackRegistry starts Debian's docker-registry on a loopback port,
// pushes the test image to it, removes the local tag and returns the image
// name; the registry is stopped (by PID) at cleanup.
func agentPushToLoopbackRegistry(t *testing.T) string {
	t.Helper()
	bin := needTool(t, "docker-registry")
	dir := t.TempDir()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := exec.Command(bin, "serve", cfgPath)
	reg.Env = baseEnv()
	out := &syncBuffer{}
	reg.Stdout, reg.Stderr = out, out
	if err := reg.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = reg.Process.Kill()
		_ = reg.Wait()
		if t.Failed() {
			t.Logf("docker-registry output:\n%s", out.Tail(8<<10))
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, _, err := httpDo(http.MethodGet, "http://"+addr+"/v2/"); err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry on %s not answering within 15s:\n%s", addr, out.String())
		}
	}
	image := fmt.Sprintf("%s/e2e/busybox:%d", addr, time.Now().UnixNano())
	agentDockerOut(t, "tag", testimage.Busybox, image)
	agentDockerOut(t, "push", image)
	agentDockerOut(t, "rmi", image)
	return image
}

// TestAgentRestart kills a separate `ecsd agent` with SIGKILL while two tasks
// run and starts it again on the same data dir: same container instance, same
// containers, nothing duplicated, tasks still RUNNING.
func TestAgentRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	agentNeedDocker(t)
	srv := startECSD(t, ecsdOpts{Mode: "server", Env: []string{"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test"}})
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "join-token"))
	if err != nil {
		t.Fatalf("join token: %v", err)
	}
	c := newAgentCLI(srv.URL)
	c.aws(t, "ecs", "create-cluster", "--cluster-name", "default", "--query", "cluster.status", "--output", "text")
	tmdsAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, tmdsPort, _ := strings.Cut(tmdsAddr, ":")
	agentDir := t.TempDir()
	var instance string
	startAgent := func() *exec.Cmd {
		cmd := exec.Command(ecsdBin, "agent", "--server", srv.URL, "--join-token", strings.TrimSpace(string(token)),
			"--data-dir", agentDir, "--tmds-port", tmdsPort)
		cmd.Env = baseEnv()
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start ecsd agent: %v", err)
		}
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
				t.Logf("ecsd agent (pid %d) output:\n%s", cmd.Process.Pid, out.Tail(16<<10))
			}
		})
		return cmd
	}
	agent := startAgent()
	instance = c.instanceARN(t)
	t.Cleanup(func() { agentRemoveContainers(t, "default", instance) })

	c.register(t, agentTaskdef("e2e-restart", "", agentBusybox("main", "sleep", "3600")))
	arns := []string{c.runTask(t, "e2e-restart"), c.runTask(t, "e2e-restart")}
	before := map[string]string{}
	for _, arn := range arns {
		task := c.wait(t, arn, "RUNNING", 60*time.Second)
		before[arn] = aws.ToString(task.Containers[0].RuntimeId)
	}
	psFilter := []string{"ps", "-q", "--no-trunc", "--filter", "label=ecsd.instance=" + instance, "--filter", "label=com.amazonaws.ecs.task-definition-family=e2e-restart"}
	psBefore := strings.Fields(agentDockerOut(t, psFilter...))

	if err := agent.Process.Kill(); err != nil {
		t.Fatalf("kill -9 agent: %v", err)
	}
	_, _ = agent.Process.Wait()
	startAgent()
	if got := c.instanceARN(t); got != instance {
		t.Errorf("container instance after restart = %s, want %s", got, instance)
	}
	// Give the restarted agent time to re-attach and to (wrongly) start copies.
	time.Sleep(3 * time.Second)
	psAfter := strings.Fields(agentDockerOut(t, psFilter...))
	if strings.Join(agentSortedCopy(psAfter), " ") != strings.Join(agentSortedCopy(psBefore), " ") || len(psAfter) != 2 {
		t.Errorf("running containers after restart %v, before %v: want the same two", psAfter, psBefore)
	}
	for _, arn := range arns {
		task := c.wait(t, arn, "RUNNING", 10*time.Second)
		if got := aws.ToString(task.Containers[0].RuntimeId); got != before[arn] {
			t.Errorf("task %s runtimeId after restart %s, before %s", arn, got, before[arn])
		}
	}
	var listed []string
	c.json(t, &listed, "ecs", "list-tasks", "--cluster", "default", "--query", "taskArns")
	if len(listed) != 2 {
		t.Errorf("list-tasks after restart = %v, want the two tasks", listed)
	}
	for _, arn := range arns {
		c.stop(t, arn)
	}
	if left := strings.Fields(agentDockerOut(t, psFilter...)); len(left) != 0 {
		t.Errorf("containers still running after both tasks stopped: %v", left)
	}
}

func agentSortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
