package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// placementCLI runs `aws ecs` (CLI v1) against one endpoint with strict keys.
type placementCLI struct {
	t   *testing.T
	env []string
	url string
}

func (c placementCLI) run(args ...string) (string, error) {
	c.t.Helper()
	args = append(append([]string{"ecs"}, args...), "--endpoint-url", c.url, "--region", "us-east-1", "--output", "json")
	return run(c.t, time.Minute, ".", c.env, "aws", args...)
}

// must runs the command, fails the test on error and decodes its JSON output into out (if not nil).
func (c placementCLI) must(out any, args ...string) {
	c.t.Helper()
	s, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws ecs %s: %v", args[0], err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			c.t.Fatalf("aws ecs %s: decoding output: %v", args[0], err)
		}
	}
}

// placementTask is what the test reads of a task in the CLI's JSON.
type placementTask struct {
	TaskArn              string `json:"taskArn"`
	ContainerInstanceArn string `json:"containerInstanceArn"`
	AvailabilityZone     string `json:"availabilityZone"`
	LastStatus           string `json:"lastStatus"`
	DesiredStatus        string `json:"desiredStatus"`
	Group                string `json:"group"`
}

type placementFailure struct {
	Arn    string `json:"arn"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type placementRunOut struct {
	Tasks    []placementTask    `json:"tasks"`
	Failures []placementFailure `json:"failures"`
}

// placementAgent is an `ecsd agent` subprocess.
type placementAgent struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// placementStartAgent runs `ecsd agent` with a zone and custom attributes,
// joining cluster on server p; it is stopped (by PID) at cleanup.
func placementStartAgent(t *testing.T, p *ecsdProc, cluster, az, attrs string) *placementAgent {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(p.DataDir, "join-token"))
	if err != nil {
		t.Fatalf("join token: %v", err)
	}
	cmd := exec.Command(ecsdBin, "agent", "--server", p.URL, "--join-token", strings.TrimSpace(string(token)),
		"--data-dir", t.TempDir(), "--cluster", cluster, "--availability-zone", az, "--attributes", attrs,
		"--cpu", "2048", "--memory", "1024", "--tmds-port", placementFreePort(t))
	cmd.Env = baseEnv()
	a := &placementAgent{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("ecsd agent %s (pid %d) output:\n%s", az, cmd.Process.Pid, a.out.Tail(8<<10))
		}
	})
	return a
}

func (a *placementAgent) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Signal(syscall.SIGKILL)
		<-a.exited
	}
}

func placementFreePort(t *testing.T) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr[strings.LastIndex(addr, ":")+1:]
}

// placementNeedDocker skips (or fails under ECSD_E2E_REQUIRED=1) when dockerd
// does not answer, and makes sure the local busybox image exists (the agents
// of `ecsd server` do not build it; `ecsd dev` does).
func placementNeedDocker(t *testing.T) {
	t.Helper()
	needTool(t, "docker")
	if err := exec.Command("docker", "version").Run(); err != nil {
		if required() {
			t.Fatalf("dockerd is not answering and ECSD_E2E_REQUIRED=1: %v", err)
		}
		t.Skipf("dockerd is not answering (set ECSD_E2E_REQUIRED=1 to make this a failure): %v", err)
	}
	rt, err := docker.New(docker.Config{})
	if err != nil {
		t.Fatalf("docker runtime: %v", err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := testimage.Ensure(ctx, rt); err != nil {
		t.Fatalf("build %s: %v", testimage.Busybox, err)
	}
}

// placementRemoveContainers removes (by ID) every container the given
// instances' agents left behind.
func placementRemoveContainers(t *testing.T, instanceARNs []string) {
	for _, arn := range instanceARNs {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=ecsd.instance="+arn).Output()
		if err != nil {
			t.Logf("docker ps for leftovers of %s: %v", arn, err)
			continue
		}
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command("docker", "rm", "-f", id).CombinedOutput(); err != nil {
				t.Logf("docker rm -f %s: %v %s", id, err, b)
			}
		}
	}
}

// placementEventually polls cond every 200 ms until it returns "" or the
// timeout passes; then it fails with the last reason.
func placementEventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// placementARNs are the tasks' ARNs.
func placementARNs(tasks []placementTask) []string {
	var arns []string
	for _, tk := range tasks {
		arns = append(arns, tk.TaskArn)
	}
	return arns
}

// placementPerInstance counts tasks per container instance ARN.
func placementPerInstance(tasks []placementTask) map[string]int {
	m := map[string]int{}
	for _, tk := range tasks {
		m[tk.ContainerInstanceArn]++
	}
	return m
}

// TestPlacementTwoAgents proves task placement end to end: `ecsd server` with
// strict SigV4 and two `ecsd agent` processes in different zones with different
// custom attributes; spread by zone, memberOf on a custom attribute,
// distinctInstance within a task group, and an attribute added with
// put-attributes, all observed through the aws CLI's describe-tasks.
func TestPlacementTwoAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	placementNeedDocker(t)
	const account = "111122223333"
	cluster := "e2e-place-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)

	var instances []string
	t.Cleanup(func() { placementRemoveContainers(t, instances) }) // after the agents and server stop
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}})
	cli := placementCLI{t: t, env: awsCLIEnv("test", "test"), url: p.URL}
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	ctx := context.Background()

	cli.must(nil, "create-cluster", "--cluster-name", cluster)
	placementStartAgent(t, p, cluster, "us-east-1a", "stack=blue")
	placementStartAgent(t, p, cluster, "us-east-1b", "stack=green")

	// Which instance is which, by zone.
	var instA, instB string
	placementEventually(t, 60*time.Second, "both agents register", func() string {
		ci, err := sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
		if err != nil || len(ci.ContainerInstanceArns) != 2 {
			return fmt.Sprintf("instances %v err %v", ci, err)
		}
		d, err := sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: ci.ContainerInstanceArns})
		if err != nil {
			return err.Error()
		}
		instA, instB = "", ""
		for _, c := range d.ContainerInstances {
			if !c.AgentConnected {
				return "an agent is not connected yet"
			}
			for _, a := range c.Attributes {
				if aws.ToString(a.Name) == "ecs.availability-zone" {
					switch aws.ToString(a.Value) {
					case "us-east-1a":
						instA = aws.ToString(c.ContainerInstanceArn)
					case "us-east-1b":
						instB = aws.ToString(c.ContainerInstanceArn)
					}
				}
			}
		}
		instances = ci.ContainerInstanceArns
		if instA == "" || instB == "" {
			return fmt.Sprintf("zones not both reported (a=%q b=%q)", instA, instB)
		}
		return ""
	})
	t.Logf("agent A (us-east-1a, stack=blue): %s; agent B (us-east-1b, stack=green): %s", instA, instB)

	const family = "e2e-place"
	cli.must(nil, "register-task-definition", "--family", family, "--network-mode", "bridge",
		"--container-definitions", fmt.Sprintf(`[{"name":"sleep","image":%q,"memory":16,"essential":true,`+
			`"command":["sleep","3600"],"linuxParameters":{"initProcessEnabled":true},"stopTimeout":2}]`, testimage.Busybox))

	// Every task started, for the final stop.
	var started []string
	runTask := func(t *testing.T, args ...string) placementRunOut {
		t.Helper()
		c := cli
		c.t = t
		var out placementRunOut
		c.must(&out, append([]string{"run-task", "--cluster", cluster, "--task-definition", family}, args...)...)
		started = append(started, placementARNs(out.Tasks)...)
		return out
	}
	describe := func(t *testing.T, arns []string) []placementTask {
		t.Helper()
		c := cli
		c.t = t
		var out struct {
			Tasks    []placementTask    `json:"tasks"`
			Failures []placementFailure `json:"failures"`
		}
		c.must(&out, append([]string{"describe-tasks", "--cluster", cluster, "--tasks"}, arns...)...)
		if len(out.Failures) > 0 || len(out.Tasks) != len(arns) {
			t.Fatalf("describe-tasks: %d tasks for %d ARNs, failures %+v", len(out.Tasks), len(arns), out.Failures)
		}
		return out.Tasks
	}
	// running waits (polling with the SDK, faster than the CLI's 6 s waiter)
	// until every task is RUNNING, then returns the CLI's describe-tasks view.
	running := func(t *testing.T, arns []string) []placementTask {
		t.Helper()
		placementEventually(t, 45*time.Second, "tasks RUNNING", func() string {
			d, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
			if err != nil {
				return err.Error()
			}
			var not []string
			for _, tk := range d.Tasks {
				if s := aws.ToString(tk.LastStatus); s != "RUNNING" {
					not = append(not, s)
				}
			}
			if len(d.Tasks) != len(arns) || len(not) > 0 {
				return fmt.Sprintf("%d of %d described, not RUNNING: %v", len(d.Tasks), len(arns), not)
			}
			return ""
		})
		return describe(t, arns)
	}

	t.Run("spread by zone", func(t *testing.T) {
		out := runTask(t, "--count", "6", "--placement-strategy", "type=spread,field=attribute:ecs.availability-zone")
		if len(out.Tasks) != 6 || len(out.Failures) != 0 {
			t.Fatalf("run-task --count 6: %d tasks, failures %+v; want 6 and none", len(out.Tasks), out.Failures)
		}
		tasks := running(t, placementARNs(out.Tasks))
		per := placementPerInstance(tasks)
		if per[instA] != 3 || per[instB] != 3 {
			t.Errorf("tasks per instance %v, want 3 on A and 3 on B", per)
		}
		zones := map[string]int{}
		for _, tk := range tasks {
			zones[tk.AvailabilityZone]++
		}
		if zones["us-east-1a"] != 3 || zones["us-east-1b"] != 3 {
			t.Errorf("availabilityZone counts %v, want 3×us-east-1a and 3×us-east-1b", zones)
		}
	})

	t.Run("memberOf custom attribute", func(t *testing.T) {
		out := runTask(t, "--count", "3", "--placement-constraints", "type=memberOf,expression=attribute:stack == green")
		if len(out.Tasks) != 3 || len(out.Failures) != 0 {
			t.Fatalf("run-task memberOf(stack == green): %d tasks, failures %+v; want 3 and none", len(out.Tasks), out.Failures)
		}
		for _, tk := range running(t, placementARNs(out.Tasks)) {
			if tk.ContainerInstanceArn != instB {
				t.Errorf("task %s on %s, want agent B %s (stack=green)", tk.TaskArn, tk.ContainerInstanceArn, instB)
			}
			if tk.AvailabilityZone != "us-east-1b" {
				t.Errorf("task %s availabilityZone %q, want us-east-1b", tk.TaskArn, tk.AvailabilityZone)
			}
		}
	})

	t.Run("distinctInstance within a group", func(t *testing.T) {
		out := runTask(t, "--count", "2", "--group", "g1", "--placement-constraints", "type=distinctInstance")
		if len(out.Tasks) != 2 || len(out.Failures) != 0 {
			t.Fatalf("run-task --count 2 distinctInstance: %d tasks, failures %+v; want 2 and none", len(out.Tasks), out.Failures)
		}
		tasks := running(t, placementARNs(out.Tasks))
		if per := placementPerInstance(tasks); len(per) != 2 || per[instA] != 1 || per[instB] != 1 {
			t.Errorf("group g1 tasks per instance %v, want one on each of A and B", per)
		}
		for _, tk := range tasks {
			if tk.Group != "g1" {
				t.Errorf("task %s group %q, want g1", tk.TaskArn, tk.Group)
			}
		}

		// Both instances already run a task of g1: ECS places nothing and
		// answers one failure per refusing instance.
		third := runTask(t, "--group", "g1", "--placement-constraints", "type=distinctInstance")
		if len(third.Tasks) != 0 {
			t.Errorf("third distinctInstance task of g1 placed on %v; want no placement", placementPerInstance(third.Tasks))
		}
		if len(third.Failures) == 0 {
			t.Errorf("third distinctInstance task of g1: no failures[]")
		}
		refused := map[string]bool{}
		for _, f := range third.Failures {
			refused[f.Arn] = true
			if !strings.Contains(f.Reason, "DistinctInstance") {
				t.Errorf("failure %+v: reason does not name DistinctInstance", f)
			}
		}
		if !refused[instA] || !refused[instB] {
			t.Errorf("failures[] %+v: want one for each of A and B", third.Failures)
		}
		// Nothing half-created: the group still has exactly its two tasks, RUNNING.
		c := cli
		c.t = t
		var lt struct {
			TaskArns []string `json:"taskArns"`
		}
		c.must(&lt, "list-tasks", "--cluster", cluster)
		all := describe(t, lt.TaskArns)
		var g1 []string
		for _, tk := range all {
			if tk.LastStatus == "PROVISIONING" || tk.LastStatus == "PENDING" {
				t.Errorf("task %s (group %s) is %s after the refused run-task", tk.TaskArn, tk.Group, tk.LastStatus)
			}
			if tk.Group == "g1" {
				g1 = append(g1, tk.TaskArn)
			}
		}
		if len(g1) != 2 {
			t.Errorf("group g1 has %d tasks %v, want 2", len(g1), g1)
		}
	})

	t.Run("put-attributes then memberOf and list filter", func(t *testing.T) {
		c := cli
		c.t = t
		c.must(nil, "put-attributes", "--cluster", cluster, "--attributes",
			fmt.Sprintf("name=disk,value=ssd,targetType=container-instance,targetId=%s", instA))
		out := runTask(t, "--placement-constraints", "type=memberOf,expression=attribute:disk == ssd")
		if len(out.Tasks) != 1 || len(out.Failures) != 0 {
			t.Fatalf("run-task memberOf(disk == ssd): %d tasks, failures %+v; want 1 and none", len(out.Tasks), out.Failures)
		}
		for _, tk := range running(t, placementARNs(out.Tasks)) {
			if tk.ContainerInstanceArn != instA {
				t.Errorf("task %s on %s, want agent A %s (disk=ssd)", tk.TaskArn, tk.ContainerInstanceArn, instA)
			}
		}
		var lc struct {
			ContainerInstanceArns []string `json:"containerInstanceArns"`
		}
		c.must(&lc, "list-container-instances", "--cluster", cluster, "--filter", "attribute:stack == blue")
		if len(lc.ContainerInstanceArns) != 1 || lc.ContainerInstanceArns[0] != instA {
			t.Errorf("list-container-instances --filter 'attribute:stack == blue' = %v, want only A %s", lc.ContainerInstanceArns, instA)
		}
	})

	t.Run("stop all", func(t *testing.T) {
		c := cli
		c.t = t
		if len(started) == 0 {
			t.Skip("no task was started")
		}
		for _, arn := range started {
			c.must(nil, "stop-task", "--cluster", cluster, "--task", arn, "--reason", "e2e placement done")
		}
		// The CLI's tasks-stopped waiter takes at most 100 ARNs; 6+3+2+1 = 12.
		placementEventually(t, 45*time.Second, "tasks STOPPED", func() string {
			d, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: started})
			if err != nil {
				return err.Error()
			}
			var not []string
			for _, tk := range d.Tasks {
				if s := aws.ToString(tk.LastStatus); s != "STOPPED" {
					not = append(not, s)
				}
			}
			sort.Strings(not)
			if len(not) > 0 {
				return fmt.Sprintf("not STOPPED: %v", not)
			}
			return ""
		})
		if _, err := c.run(append([]string{"wait", "tasks-stopped", "--cluster", cluster, "--tasks"}, started...)...); err != nil {
			t.Errorf("aws ecs wait tasks-stopped: %v", err)
		}
	})
}
