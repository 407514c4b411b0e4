package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// badImage can never be pulled: nothing listens on port 1.
const badImage = "127.0.0.1:1/nope:latest"

// webContainers is a bridge-mode busybox httpd on a dynamic host port whose
// health check passes while /tmp/ok exists (created at start), so a test can
// turn a task unhealthy with `docker exec <id> rm /tmp/ok`. version makes each
// registration a distinct revision.
func webContainers(image, version string) string {
	return fmt.Sprintf(`[{"name":"web","image":%q,"memory":32,"essential":true,`+
		`"command":["sh","-c","touch /tmp/ok; exec httpd -f -p 8080 -h /etc"],`+
		`"linuxParameters":{"initProcessEnabled":true},"stopTimeout":2,`+
		`"environment":[{"name":"VERSION","value":%q}],`+
		`"portMappings":[{"containerPort":8080,"hostPort":0}],`+
		`"healthCheck":{"command":["CMD-SHELL","test -f /tmp/ok"],"interval":5,"timeout":2,"retries":2,"startPeriod":0}}]`,
		image, version)
}

// awsCLI runs `aws ecs` against one endpoint.
type awsCLI struct {
	t   *testing.T
	env []string
	url string
}

func (c awsCLI) run(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	args = append(append([]string{"ecs"}, args...), "--endpoint-url", c.url, "--region", "us-east-1", "--output", "json")
	return run(c.t, timeout, ".", c.env, "aws", args...)
}

// must runs the command, fails the test on error and decodes its JSON output into out (if not nil).
func (c awsCLI) must(out any, args ...string) {
	c.t.Helper()
	s, err := c.run(time.Minute, args...)
	if err != nil {
		c.t.Fatalf("aws ecs %s: %v", args[0], err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			c.t.Fatalf("aws ecs %s: decoding output: %v", args[0], err)
		}
	}
}

// wait runs an `aws ecs wait` waiter (it polls every 15 s).
func (c awsCLI) wait(waiter string, args ...string) {
	c.t.Helper()
	if _, err := c.run(3*time.Minute, append([]string{"wait", waiter}, args...)...); err != nil {
		c.t.Fatalf("aws ecs wait %s: %v", waiter, err)
	}
}

// svcHarness holds what the service subtests share.
type svcHarness struct {
	t       *testing.T
	cli     awsCLI
	sdk     *ecs.Client
	cluster string
}

func (h *svcHarness) describe(service string) types.Service {
	h.t.Helper()
	var out *ecs.DescribeServicesOutput
	err := retry(func() (err error) {
		out, err = h.sdk.DescribeServices(context.Background(), &ecs.DescribeServicesInput{
			Cluster: aws.String(h.cluster), Services: []string{service},
		})
		return err
	})
	if err != nil {
		h.t.Fatalf("describe-services %s: %v", service, err)
	}
	if len(out.Services) != 1 {
		h.t.Fatalf("describe-services %s: no service, failures %+v", service, out.Failures)
	}
	return out.Services[0]
}

// tasks lists the service's tasks, both desired RUNNING and desired STOPPED.
func (h *svcHarness) tasks(service string) []types.Task {
	h.t.Helper()
	var tasks []types.Task
	err := retry(func() (err error) {
		tasks, err = sampleTasks(context.Background(), h.sdk, h.cluster, service)
		return err
	})
	if err != nil {
		h.t.Fatalf("list/describe tasks of %s: %v", service, err)
	}
	return tasks
}

// retry tries a read three times: a rare dropped keep-alive connection must not
// fail a minutes-long test.
func retry(f func() error) error {
	var err error
	for range 3 {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// live are the tasks that are not stopped, healthy those RUNNING, meant to
// keep running and passing their health checks.
func liveHealthy(tasks []types.Task) (live, healthy []types.Task) {
	for _, tk := range tasks {
		if aws.ToString(tk.LastStatus) == "STOPPED" {
			continue
		}
		live = append(live, tk)
		if aws.ToString(tk.LastStatus) == "RUNNING" && aws.ToString(tk.DesiredStatus) == "RUNNING" && tk.HealthStatus == types.HealthStatusHealthy {
			healthy = append(healthy, tk)
		}
	}
	return live, healthy
}

// eventually polls cond every 200 ms until it returns "" or the timeout
// passes; then it fails with the last reason.
func (h *svcHarness) eventually(timeout time.Duration, what string, cond func() string) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// steady waits until the service has one COMPLETED deployment on taskDef
// (empty: any) with want RUNNING and healthy tasks, nothing else live.
func (h *svcHarness) steady(service, taskDef string, want int) []types.Task {
	h.t.Helper()
	var healthy []types.Task
	h.eventually(90*time.Second, "service "+service+" steady", func() string {
		s := h.describe(service)
		if len(s.Deployments) != 1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
			return fmt.Sprintf("deployments %s", deploymentsString(s.Deployments))
		}
		if taskDef != "" && !strings.HasSuffix(aws.ToString(s.Deployments[0].TaskDefinition), "/"+taskDef) {
			return fmt.Sprintf("primary task definition %s, want %s", aws.ToString(s.Deployments[0].TaskDefinition), taskDef)
		}
		var live []types.Task
		live, healthy = liveHealthy(h.tasks(service))
		if s.RunningCount != int32(want) || len(live) != want || len(healthy) != want {
			return fmt.Sprintf("runningCount %d, %d live tasks, %d healthy; want %d", s.RunningCount, len(live), len(healthy), want)
		}
		return ""
	})
	return healthy
}

func deploymentsString(ds []types.Deployment) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "[%s %s %s run=%d pend=%d failed=%d %q] ", aws.ToString(d.Status), d.RolloutState,
			aws.ToString(d.TaskDefinition), d.RunningCount, d.PendingCount, d.FailedTasks, aws.ToString(d.RolloutStateReason))
	}
	return b.String()
}

func taskARNs(tasks []types.Task) map[string]bool {
	m := map[string]bool{}
	for _, tk := range tasks {
		m[aws.ToString(tk.TaskArn)] = true
	}
	return m
}

// removeInstanceContainers removes (by ID) every container the given instances'
// agents left behind.
func removeInstanceContainers(t *testing.T, instanceARNs []string) {
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

// svcNeedDocker skips (or fails under ECSD_E2E_REQUIRED=1) when dockerd does not answer.
func svcNeedDocker(t *testing.T) {
	t.Helper()
	needTool(t, "docker")
	if err := exec.Command("docker", "version").Run(); err != nil {
		if required() {
			t.Fatalf("dockerd is not answering and ECSD_E2E_REQUIRED=1: %v", err)
		}
		t.Skipf("dockerd is not answering (set ECSD_E2E_REQUIRED=1 to make this a failure): %v", err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr[strings.LastIndex(addr, ":")+1:]
}

// TestServices proves the service scheduler with real Docker behind `ecsd dev`
// and its in-process agent, driven by the aws CLI: create and reach a steady
// state, a rolling deployment sampled within its bounds, a bad revision rolled
// back by the circuit breaker, a killed container and a failing health check
// replaced, and delete-service --force to INACTIVE.
func TestServices(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	svcNeedDocker(t)

	var instances []string
	t.Cleanup(func() { removeInstanceContainers(t, instances) }) // runs after ecsd has stopped
	p := startECSD(t, ecsdOpts{Mode: "dev", Args: []string{"--agent-tmds-port", freePort(t)}})
	h := &svcHarness{
		t:       t,
		cli:     awsCLI{t: t, env: awsCLIEnv("test", "test"), url: p.URL},
		sdk:     testenv.NewClient(p.URL, "test", "test", "us-east-1"),
		cluster: "default",
	}
	ctx := context.Background()
	h.eventually(30*time.Second, "the dev agent registers", func() string {
		ci, err := h.sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("default")})
		if err != nil || len(ci.ContainerInstanceArns) != 1 {
			return fmt.Sprintf("instances %v err %v", ci, err)
		}
		instances = ci.ContainerInstanceArns
		return ""
	})

	cli := h.cli
	cli.must(nil, "register-task-definition", "--family", "e2e-svc", "--network-mode", "bridge",
		"--container-definitions", webContainers(testimage.Busybox, "1"))
	const svc = "e2e-svc"
	var firstTasks []types.Task

	t.Run("create and wait stable", func(t *testing.T) {
		h.t = t
		cli.t = t
		// The CLI prints timestamps as ISO strings: decode only what is checked.
		var out struct{ Service struct{ Status string } }
		cli.must(&out, "create-service", "--service-name", svc, "--task-definition", "e2e-svc:1", "--desired-count", "3",
			"--deployment-configuration", "minimumHealthyPercent=100,maximumPercent=200")
		if out.Service.Status != "ACTIVE" {
			t.Errorf("create-service status %q, want ACTIVE", out.Service.Status)
		}
		cli.wait("services-stable", "--services", svc)
		firstTasks = h.steady(svc, "e2e-svc:1", 3)
		s := h.describe(svc)
		if s.RunningCount != 3 || len(s.Deployments) != 1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
			t.Errorf("after services-stable: runningCount %d, deployments %s; want 3 and one COMPLETED", s.RunningCount, deploymentsString(s.Deployments))
		}
	})
	if t.Failed() {
		return
	}

	t.Run("rolling update within bounds", func(t *testing.T) {
		h.t = t
		cli.t = t
		cli.must(nil, "register-task-definition", "--family", "e2e-svc", "--network-mode", "bridge",
			"--container-definitions", webContainers(testimage.Busybox, "2"))
		const desired, minPct, maxPct = 3, 50, 200
		minHealthy := int(math.Ceil(desired * minPct / 100.0))
		maxTotal := desired * maxPct / 100

		// live/healthy come from the tasks; counted is describe-services'
		// running+pending over all deployments.
		type sample struct {
			at                     time.Duration
			live, healthy, counted int
		}
		var (
			mu      sync.Mutex
			samples []sample
			stop    = make(chan struct{})
			done    = make(chan struct{})
		)
		start := time.Now()
		// Sampled with the SDK (the CLI takes ~0.6 s a call): every ~200 ms,
		// the service's live and healthy tasks.
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ds, err1 := h.sdk.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(h.cluster), Services: []string{svc}})
				tasks, err2 := sampleTasks(ctx, h.sdk, h.cluster, svc)
				if err1 == nil && err2 == nil && len(ds.Services) == 1 {
					counted := 0
					for _, d := range ds.Services[0].Deployments {
						counted += int(d.RunningCount + d.PendingCount)
					}
					live, healthy := liveHealthy(tasks)
					mu.Lock()
					samples = append(samples, sample{time.Since(start), len(live), len(healthy), counted})
					mu.Unlock()
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		cli.must(nil, "update-service", "--service", svc, "--task-definition", "e2e-svc:2",
			"--deployment-configuration", fmt.Sprintf("minimumHealthyPercent=%d,maximumPercent=%d", minPct, maxPct))
		newTasks := h.steady(svc, "e2e-svc:2", 3)
		close(stop)
		<-done
		cli.wait("services-stable", "--services", svc)

		mu.Lock()
		defer mu.Unlock()
		maxLive, minH := 0, math.MaxInt
		var trace strings.Builder
		for _, s := range samples {
			maxLive, minH = max(maxLive, s.live), min(minH, s.healthy)
			fmt.Fprintf(&trace, "%.1fs live=%d healthy=%d counted=%d; ", s.at.Seconds(), s.live, s.healthy, s.counted)
			if s.healthy < minHealthy || s.live > maxTotal || s.counted > maxTotal {
				t.Errorf("sample at %.1fs: %d live, %d counted by describe-services (max %d), %d healthy (min %d)",
					s.at.Seconds(), s.live, s.counted, maxTotal, s.healthy, minHealthy)
			}
		}
		t.Logf("%d samples: max live %d (bound %d), min healthy %d (bound %d): %s", len(samples), maxLive, maxTotal, minH, minHealthy, trace.String())
		if len(samples) < 5 {
			t.Errorf("only %d samples during the rollout", len(samples))
		}
		if maxLive <= desired {
			t.Errorf("the rollout never ran more than %d tasks at once (max live %d): not a rolling start-first replacement", desired, maxLive)
		}
		for arn := range taskARNs(newTasks) {
			if taskARNs(firstTasks)[arn] {
				t.Errorf("task %s of revision 1 still running after the rollout", arn)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("circuit breaker rolls back a bad image", func(t *testing.T) {
		h.t = t
		cli.t = t
		cli.must(nil, "register-task-definition", "--family", "e2e-svc", "--network-mode", "bridge",
			"--container-definitions", webContainers(badImage, "3"))
		cli.must(nil, "update-service", "--service", svc, "--task-definition", "e2e-svc:3",
			"--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}")
		// The failed deployment may leave deployments[] quickly once rolled
		// back, so watch for it every 200 ms, and also ask the deployment API.
		var failed *types.Deployment
		h.eventually(2*time.Minute, "deployment of e2e-svc:3 FAILED", func() string {
			s := h.describe(svc)
			for _, d := range s.Deployments {
				if strings.HasSuffix(aws.ToString(d.TaskDefinition), "/e2e-svc:3") && d.RolloutState == types.DeploymentRolloutStateFailed {
					failed = &d
					return ""
				}
			}
			for _, ev := range s.Events {
				if strings.Contains(aws.ToString(ev.Message), "deployment failed") {
					return ""
				}
			}
			return "deployments " + deploymentsString(s.Deployments)
		})
		if failed != nil {
			t.Logf("failed deployment: %s", deploymentsString([]types.Deployment{*failed}))
		}
		// If deployments[] dropped it between two polls, the service
		// deployment API still records the rollback.
		if failed == nil {
			ld, err := h.sdk.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String(h.cluster), Service: aws.String(svc)})
			if err != nil {
				t.Fatalf("list-service-deployments: %v", err)
			}
			var states []string
			for _, d := range ld.ServiceDeployments {
				states = append(states, string(d.Status))
				if strings.HasPrefix(string(d.Status), "ROLLBACK") {
					failed = &types.Deployment{RolloutState: types.DeploymentRolloutStateFailed}
				}
			}
			if failed == nil {
				t.Errorf("rolloutState FAILED never seen for e2e-svc:3 and no rolled-back service deployment (statuses %v)", states)
			}
		}
		h.steady(svc, "e2e-svc:2", 3)
		s := h.describe(svc)
		if got := aws.ToString(s.TaskDefinition); !strings.HasSuffix(got, "/e2e-svc:2") {
			t.Errorf("service taskDefinition after rollback = %s, want e2e-svc:2", got)
		}
		var events []string
		for _, ev := range s.Events {
			events = append(events, aws.ToString(ev.Message))
		}
		t.Logf("events:\n%s", strings.Join(events, "\n"))
		cli.wait("services-stable", "--services", svc)
	})
	if t.Failed() {
		return
	}

	t.Run("killed container replaced", func(t *testing.T) {
		h.t = t
		cli.t = t
		_, healthy := liveHealthy(h.tasks(svc))
		if len(healthy) == 0 {
			t.Fatal("no healthy task to kill")
		}
		victim := healthy[0]
		id := aws.ToString(victim.Containers[0].RuntimeId)
		if out, err := exec.Command("docker", "kill", id).CombinedOutput(); err != nil {
			t.Fatalf("docker kill %s: %v %s", id, err, out)
		}
		h.eventually(60*time.Second, "killed task replaced", func() string {
			live, healthy := liveHealthy(h.tasks(svc))
			if taskARNs(live)[aws.ToString(victim.TaskArn)] {
				return "the killed task is not stopped yet"
			}
			if len(healthy) != 3 {
				return fmt.Sprintf("%d healthy tasks", len(healthy))
			}
			return ""
		})
		h.steady(svc, "e2e-svc:2", 3)
		cli.wait("services-stable", "--services", svc)
	})
	if t.Failed() {
		return
	}

	t.Run("unhealthy task replaced", func(t *testing.T) {
		h.t = t
		cli.t = t
		_, healthy := liveHealthy(h.tasks(svc))
		if len(healthy) == 0 {
			t.Fatal("no healthy task")
		}
		victim := healthy[0]
		arn := aws.ToString(victim.TaskArn)
		id := aws.ToString(victim.Containers[0].RuntimeId)
		if out, err := exec.Command("docker", "exec", id, "rm", "/tmp/ok").CombinedOutput(); err != nil {
			t.Fatalf("docker exec %s rm /tmp/ok: %v %s", id, err, out)
		}
		h.eventually(90*time.Second, "unhealthy task replaced", func() string {
			live, healthy := liveHealthy(h.tasks(svc))
			if taskARNs(live)[arn] {
				return "the unhealthy task is not stopped yet"
			}
			if len(healthy) != 3 {
				return fmt.Sprintf("%d healthy tasks", len(healthy))
			}
			return ""
		})
		dt, err := h.sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(h.cluster), Tasks: []string{arn}})
		if err != nil || len(dt.Tasks) != 1 {
			t.Fatalf("describe-tasks %s: %v %+v", arn, err, dt)
		}
		stopped := dt.Tasks[0]
		t.Logf("replaced task: health %s, stop code %s, reason %q", stopped.HealthStatus, stopped.StopCode, aws.ToString(stopped.StoppedReason))
		s := h.describe(svc)
		id32 := arn[strings.LastIndex(arn, "/")+1:]
		sawEvent := false
		for _, ev := range s.Events {
			if m := aws.ToString(ev.Message); strings.Contains(m, id32) && strings.Contains(m, "failed container health checks") {
				sawEvent = true
			}
		}
		if !sawEvent && !strings.Contains(strings.ToLower(aws.ToString(stopped.StoppedReason)), "health") {
			t.Errorf("no \"failed container health checks\" event for task %s and its stoppedReason %q does not mention health", id32, aws.ToString(stopped.StoppedReason))
		}
		h.steady(svc, "e2e-svc:2", 3)
		cli.wait("services-stable", "--services", svc)
	})

	t.Run("delete force to INACTIVE", func(t *testing.T) {
		h.t = t
		cli.t = t
		cli.must(nil, "delete-service", "--service", svc, "--force")
		cli.wait("services-inactive", "--services", svc)
		if s := h.describe(svc); aws.ToString(s.Status) != "INACTIVE" {
			t.Errorf("status after delete = %q, want INACTIVE", aws.ToString(s.Status))
		}
		h.eventually(60*time.Second, "the service's tasks stop", func() string {
			if live, _ := liveHealthy(h.tasks(svc)); len(live) > 0 {
				return fmt.Sprintf("%d tasks still live", len(live))
			}
			return ""
		})
	})
}

// sampleTasks is the sampler's (non-fatal) version of svcHarness.tasks.
func sampleTasks(ctx context.Context, sdk *ecs.Client, cluster, service string) ([]types.Task, error) {
	var arns []string
	for _, ds := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		lt, err := sdk.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service), DesiredStatus: ds, MaxResults: aws.Int32(100)})
		if err != nil {
			return nil, err
		}
		arns = append(arns, lt.TaskArns...)
	}
	var tasks []types.Task
	for len(arns) > 0 {
		n := min(len(arns), 100)
		dt, err := sdk.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[:n]})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, dt.Tasks...)
		arns = arns[n:]
	}
	return tasks, nil
}

// agentProc is an `ecsd agent` subprocess.
type agentProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// startAgent runs `ecsd agent` joining cluster on server p and stops it (by PID) at cleanup.
func startAgent(t *testing.T, p *ecsdProc, cluster, az string) *agentProc {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(p.DataDir, "join-token"))
	if err != nil {
		t.Fatalf("join token: %v", err)
	}
	cmd := exec.Command(ecsdBin, "agent", "--server", p.URL, "--join-token", strings.TrimSpace(string(token)),
		"--data-dir", t.TempDir(), "--cluster", cluster, "--availability-zone", az,
		"--cpu", "2048", "--memory", "1024", "--tmds-port", freePort(t))
	cmd.Env = baseEnv()
	a := &agentProc{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
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

func (a *agentProc) stop() {
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

// TestServicesTwoAgents runs `ecsd server` with two `ecsd agent` processes (two
// zones): a DAEMON service runs one task per instance, and draining an instance
// moves a REPLICA service's tasks to the other.
func TestServicesTwoAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	needTool(t, "aws")
	svcNeedDocker(t)
	const account = "111122223333"
	cluster := "e2e-svc-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)

	var instances []string
	t.Cleanup(func() { removeInstanceContainers(t, instances) }) // after the agents and server stop
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}})
	h := &svcHarness{
		t:       t,
		cli:     awsCLI{t: t, env: awsCLIEnv("test", "test"), url: p.URL},
		sdk:     testenv.NewClient(p.URL, "test", "test", "us-east-1"),
		cluster: cluster,
	}
	cli := h.cli
	ctx := context.Background()
	cli.must(nil, "create-cluster", "--cluster-name", cluster)
	startAgent(t, p, cluster, "us-east-1a")
	startAgent(t, p, cluster, "us-east-1b")
	h.eventually(60*time.Second, "both agents register", func() string {
		ci, err := h.sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
		if err != nil || len(ci.ContainerInstanceArns) != 2 {
			return fmt.Sprintf("instances %v err %v", ci, err)
		}
		d, err := h.sdk.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: ci.ContainerInstanceArns})
		if err != nil {
			return err.Error()
		}
		for _, c := range d.ContainerInstances {
			if !c.AgentConnected {
				return "an agent is not connected yet"
			}
		}
		instances = ci.ContainerInstanceArns
		return ""
	})
	cli.must(nil, "register-task-definition", "--family", "e2e-svc2", "--network-mode", "bridge",
		"--container-definitions", webContainers(testimage.Busybox, "1"))

	t.Run("daemon one task per instance", func(t *testing.T) {
		h.t = t
		cli.t = t
		cli.must(nil, "create-service", "--cluster", cluster, "--service-name", "daemon", "--task-definition", "e2e-svc2",
			"--scheduling-strategy", "DAEMON")
		tasks := h.steady("daemon", "e2e-svc2:1", 2)
		per := map[string]int{}
		for _, tk := range tasks {
			per[aws.ToString(tk.ContainerInstanceArn)]++
		}
		for _, arn := range instances {
			if per[arn] != 1 {
				t.Errorf("instance %s runs %d daemon tasks, want 1 (all: %v)", arn, per[arn], per)
			}
		}
		cli.wait("services-stable", "--cluster", cluster, "--services", "daemon")
		cli.must(nil, "delete-service", "--cluster", cluster, "--service", "daemon", "--force")
		cli.wait("services-inactive", "--cluster", cluster, "--services", "daemon")
	})

	t.Run("drain moves tasks", func(t *testing.T) {
		h.t = t
		cli.t = t
		cli.must(nil, "create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", "e2e-svc2",
			"--desired-count", "2", "--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=200")
		before := h.steady("web", "e2e-svc2:1", 2)
		cli.wait("services-stable", "--cluster", cluster, "--services", "web")
		drained := aws.ToString(before[0].ContainerInstanceArn)
		other := instances[0]
		if other == drained {
			other = instances[1]
		}
		onDrained := map[string]bool{}
		for _, tk := range before {
			if aws.ToString(tk.ContainerInstanceArn) == drained {
				onDrained[aws.ToString(tk.TaskArn)] = true
			}
		}
		t.Logf("draining %s, which runs %d of the 2 tasks", drained, len(onDrained))
		cli.must(nil, "update-container-instances-state", "--cluster", cluster, "--container-instances", drained, "--status", "DRAINING")
		after := h.steady("web", "e2e-svc2:1", 2)
		for _, tk := range after {
			if got := aws.ToString(tk.ContainerInstanceArn); got != other {
				t.Errorf("task %s runs on %s after draining, want %s", aws.ToString(tk.TaskArn), got, other)
			}
			if onDrained[aws.ToString(tk.TaskArn)] {
				t.Errorf("task %s of the drained instance still runs", aws.ToString(tk.TaskArn))
			}
		}
		cli.wait("services-stable", "--cluster", cluster, "--services", "web")
		cli.must(nil, "delete-service", "--cluster", cluster, "--service", "web", "--force")
		cli.wait("services-inactive", "--cluster", cluster, "--services", "web")
	})
}

// TestTerraformService applies testdata/terraform-service — a cluster, a
// bridge-mode task definition and an aws_ecs_service of two tasks with
// wait_for_steady_state and the deployment circuit breaker — with Terraform
// against `ecsd dev`, with one `ecsd agent` joining the cluster Terraform
// creates (the dev server's own agent joins only the default cluster, and a
// cluster with a registered instance cannot be destroyed). Apply must reach the
// steady state, a second plan must show no changes, and destroy must succeed:
// first the service, then (the agent stopped and its instance deregistered)
// the rest.
func TestTerraformService(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	tf := needTool(t, "terraform")
	mirror := providerMirror(t)
	svcNeedDocker(t)
	cluster := "e2e-tfsvc-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)

	var instances []string
	t.Cleanup(func() { removeInstanceContainers(t, instances) })
	p := startECSD(t, ecsdOpts{Mode: "dev", Args: []string{"--agent=false"}})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	// The agent retries its registration until Terraform has created the cluster.
	agent := startAgent(t, p, cluster, "us-east-1a")

	work := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "terraform-service", "main.tf"))
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
	ci, err := sdk.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
	if err != nil || len(ci.ContainerInstanceArns) != 1 {
		t.Fatalf("list-container-instances: %v, err %v; want the agent's instance", ci, err)
	}
	instances = ci.ContainerInstanceArns

	ds, err := sdk.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("describe-services after apply: %v %+v", err, ds)
	}
	s := ds.Services[0]
	if s.RunningCount != 2 || len(s.Deployments) != 1 || s.DeploymentConfiguration == nil ||
		s.DeploymentConfiguration.DeploymentCircuitBreaker == nil || !s.DeploymentConfiguration.DeploymentCircuitBreaker.Enable ||
		!s.DeploymentConfiguration.DeploymentCircuitBreaker.Rollback {
		t.Errorf("after apply: runningCount %d, deployments %s, deploymentConfiguration %+v; want 2 running, one deployment, breaker enable+rollback",
			s.RunningCount, deploymentsString(s.Deployments), s.DeploymentConfiguration)
	}

	if out, code := terraform(3*time.Minute, "plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("terraform plan after apply exited %d, want 0 (no changes); the plan shows which attribute differs:\n%s", code, out)
	}

	if _, code := terraform(4*time.Minute, "destroy", "-auto-approve", "-input=false", "-target=aws_ecs_service.web"); code != 0 {
		t.Fatalf("terraform destroy -target=aws_ecs_service.web exited %d (output above)", code)
	}
	ds, err = sdk.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}})
	if err != nil || len(ds.Services) != 1 || aws.ToString(ds.Services[0].Status) != "INACTIVE" {
		t.Errorf("describe-services after destroying the service: %v %+v; want INACTIVE", err, ds)
	}
	agent.stop()
	if _, err := sdk.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{
		Cluster: aws.String(cluster), ContainerInstance: aws.String(instances[0]), Force: aws.Bool(true),
	}); err != nil {
		t.Fatalf("deregister-container-instance: %v", err)
	}
	if _, code := terraform(4*time.Minute, "destroy", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform destroy exited %d (output above)", code)
	}
	dc, err := sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	if err != nil || len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("after destroy: %v %+v; want the cluster INACTIVE", err, dc)
	}
}
