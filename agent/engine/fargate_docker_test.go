package engine_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// FARGATE tasks on the real daemon: gVisor (runsc) for the app containers,
// joined to a runc pause container; a Spot interruption's SIGTERM seen inside.
// (busybox wget under Debian's gVisor 20221219 now and then fails a blocking
// read with EAGAIN, "error getting response: Resource temporarily
// unavailable", and crashes with -T; poll-based clients such as nc do not:
// the containers here retry.)

// needRunsc skips unless the daemon offers the runtime runsc.
func needRunsc(t *testing.T) {
	t.Helper()
	info, err := rt(t).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.Runtimes, "runsc") {
		t.Skip("dockerd offers no runtime runsc (scripts/setup.sh registers it when it starts dockerd)")
	}
}

func fargateAssignment(family string, cds ...ecs.ContainerDefinition) agentapi.TaskAssignment {
	a := assignment(family, ecs.NetworkModeAwsvpc, cds...)
	a.LaunchType = "FARGATE"
	a.CapacityProviderName = "FARGATE_SPOT"
	a.Definition.Cpu, a.Definition.Memory = "256", "512"
	return a
}

func dockerRuntimeOf(t *testing.T, id string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.HostConfig.Runtime}}", id).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	return strings.TrimSpace(string(out))
}

func TestFargateGVisorSpot(t *testing.T) {
	t.Parallel()
	needRunsc(t)
	h := start(t, "", func(c *engine.Config) { c.FargateRuntime = "runsc" })
	out := outDir(t)
	app := busybox("app", "sh", "-c", `trap 'echo TERM >> /out/log; exit 0' TERM
uname -r > /out/kernel
until wget -qO /out/meta.tmp "$ECS_CONTAINER_METADATA_URI_V4/task"; do sleep 0.2; done; mv /out/meta.tmp /out/meta
echo started >> /out/log
while :; do sleep 0.1; done`)
	a := fargateAssignment("gvisor", app)
	mountOut(&a, out, "app")
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 60*time.Second)

	if got := dockerRuntimeOf(t, container(sc, "app").RuntimeID); got != "runsc" {
		t.Errorf("app runs with %q, want runsc", got)
	}
	for _, c := range taskContainers(t, h.rt, a.TaskArn) {
		if c.Labels["ecsd.kind"] == "pause" {
			if got := dockerRuntimeOf(t, c.ID); got != "runc" {
				t.Errorf("pause container runs with %q, want runc", got)
			}
		}
	}
	if k := strings.TrimSpace(waitFile(t, out+"/kernel", 20*time.Second)); k == "" {
		t.Error("no kernel version written")
	} else {
		t.Logf("kernel seen inside the task: %s", k) // gVisor reports its own
	}
	var meta struct {
		LaunchType           string
		CapacityProviderName string
		Cluster              string
	}
	if err := json.Unmarshal([]byte(waitFile(t, out+"/meta", 20*time.Second)), &meta); err != nil {
		t.Fatal(err)
	}
	if meta.LaunchType != "FARGATE" || meta.CapacityProviderName != "FARGATE_SPOT" {
		t.Errorf("metadata from inside: %+v", meta)
	}
	waitFile(t, out+"/log", 10*time.Second)

	// A Spot interruption: SIGTERM inside, STOPPED once the container exits
	// (well before the two-minute warning is over).
	s := a
	s.DesiredStatus, s.StopCode, s.StoppedReason, s.Version = "STOPPED", "SpotInterruption", "Your Spot Task was interrupted.", 2
	s.StopTimeout = 2 * time.Minute
	asked := time.Now()
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{s}})
	h.rec.waitStatus(t, a.TaskArn, "STOPPING", 5*time.Second)
	sc = h.rec.waitStatus(t, a.TaskArn, "STOPPED", 60*time.Second)
	took := time.Since(asked)
	if log := waitFile(t, out+"/log", 5*time.Second); !strings.Contains(log, "TERM") {
		t.Errorf("the container never saw SIGTERM: %q", log)
	}
	if c := container(sc, "app"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("app exit %v, want 0 (its trap)", deref(c.ExitCode))
	}
	if sc.StopCode != "SpotInterruption" || took > 30*time.Second {
		t.Errorf("stopped with %q after %v", sc.StopCode, took)
	}
}

// TestFargateStartLatency compares Apply → RUNNING of an awsvpc task with
// launch type EC2, FARGATE under runc and FARGATE under runsc (pause pools
// on, interleaved so the machine's load weighs on all alike). It only
// measures with ECSD_BENCH=1.
func TestFargateStartLatency(t *testing.T) {
	if os.Getenv("ECSD_BENCH") != "1" {
		t.Skip("set ECSD_BENCH=1 to measure start latency")
	}
	needRunsc(t)
	const n = 10
	quiet := func(c *engine.Config) { c.Logger = nil; c.PausePoolSize = 2 }
	hg := start(t, "", quiet, func(c *engine.Config) { c.FargateRuntime = "runsc" })
	hc := start(t, "", quiet)
	time.Sleep(2 * time.Second) // let the pools fill
	once := func(h *harness, launch string) time.Duration {
		a := fargateAssignment("lat", busybox("app", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"))
		a.LaunchType = launch
		t0 := time.Now()
		h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
		h.rec.waitStatus(t, a.TaskArn, "RUNNING", 60*time.Second)
		d := time.Since(t0)
		h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
		h.rec.waitStatus(t, a.TaskArn, "STOPPED", 60*time.Second)
		time.Sleep(300 * time.Millisecond) // pool refill
		return d
	}
	var ec2, runc, runsc []time.Duration
	for i := 0; i < n; i++ {
		ec2 = append(ec2, once(hc, "EC2"))
		runc = append(runc, once(hc, "FARGATE"))
		runsc = append(runsc, once(hg, "FARGATE"))
	}
	median := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	me, mc, mg := median(ec2), median(runc), median(runsc)
	t.Logf("awsvpc task Apply→RUNNING, median of %d: EC2 %v, FARGATE/runc %v (×%.2f), FARGATE/runsc %v (×%.2f)",
		n, me.Round(time.Millisecond), mc.Round(time.Millisecond), float64(mc)/float64(me), mg.Round(time.Millisecond), float64(mg)/float64(me))
}
