package engine_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// Stopping goes in reverse dependency order, each container with its own
// stopTimeout: SIGTERM, then SIGKILL.
func TestStopOrderAndTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	// base ignores SIGTERM (PID 1 without a handler): killed after 2 s.
	base := busybox("base", "sleep", "300")
	base.StopTimeout = i32(2)
	// app depends on base and exits 0 on SIGTERM.
	app := busybox("app", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
	app.DependsOn = []ecs.ContainerDependency{{ContainerName: "base", Condition: ecs.ContainerConditionSTART}}
	app.StopTimeout = i32(10)
	a := assignment("stoporder", ecs.NetworkModeBridge, base, app)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)

	asked := time.Now()
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
	sc = h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if c := container(sc, "app"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("app exit = %v, want 0 (its SIGTERM trap)", deref(c.ExitCode))
	}
	if c := container(sc, "base"); c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("base exit = %v, want 137 (SIGKILL)", deref(c.ExitCode))
	}
	ctx := context.Background()
	as, _ := h.rt.Inspect(ctx, container(sc, "app").RuntimeID)
	bs, _ := h.rt.Inspect(ctx, container(sc, "base").RuntimeID)
	if !as.FinishedAt.Before(bs.FinishedAt) {
		t.Errorf("app finished at %v, base at %v: base must outlive what depends on it", as.FinishedAt, bs.FinishedAt)
	}
	if d := bs.FinishedAt.Sub(as.FinishedAt); d < 1500*time.Millisecond {
		t.Errorf("base killed %v after app stopped, want its 2 s stopTimeout", d)
	}
	if d := time.Since(asked); d > 15*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

// A container killed for memory is reported as ECS does.
func TestOOM(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	hog := busybox("hog", "tail", "/dev/zero") // buffers an endless line
	hog.Memory = i32(16)
	a := assignment("oom", ecs.NetworkModeBridge, hog)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "STOPPED", 60*time.Second)
	c := container(sc, "hog")
	if c.Reason != "OutOfMemoryError: Container killed due to memory usage" || c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("container: exit=%v reason=%q", deref(c.ExitCode), c.Reason)
	}
	if sc.StopCode != "EssentialContainerExited" {
		t.Errorf("stopCode = %q", sc.StopCode)
	}
}

// Task-scoped volumes are shared by the task's containers; volumesFrom shares
// another container's volumes; dependsOn COMPLETE/SUCCESS order them.
func TestVolumes(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	out := outDir(t)
	writer := busybox("writer", "sh", "-c", "echo shared > /data/x")
	writer.Essential = boolp(false)
	writer.MountPoints = []ecs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/data"}}
	reader := busybox("reader", "sh", "-c", "cat /data/x > /out/x.tmp && mv /out/x.tmp /out/x; exec sleep 300")
	reader.MountPoints = []ecs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/data", ReadOnly: boolp(true)}}
	reader.DependsOn = []ecs.ContainerDependency{{ContainerName: "writer", Condition: ecs.ContainerConditionSUCCESS}}
	borrower := busybox("borrower", "sh", "-c", "ls /out > /out/ls.tmp && mv /out/ls.tmp /out/ls; exec sleep 300")
	borrower.VolumesFrom = []ecs.VolumeFrom{{SourceContainer: "reader", ReadOnly: boolp(false)}}
	borrower.DependsOn = []ecs.ContainerDependency{{ContainerName: "writer", Condition: ecs.ContainerConditionCOMPLETE}}
	a := assignment("volumes", ecs.NetworkModeBridge, writer, reader, borrower)
	a.Definition.Volumes = []ecs.Volume{{Name: "scratch"}}
	mountOut(&a, out, "reader")
	t.Cleanup(func() {
		// The volume can go only after the containers using it.
		for _, c := range taskContainers(t, h.rt, a.TaskArn) {
			_ = h.rt.Remove(context.Background(), c.ID, true)
		}
		removeVolume("ecsd-" + a.TaskArn[len(a.TaskArn)-32:] + "-scratch")
	})
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	if got := waitFile(t, out+"/x", 10*time.Second); got != "shared\n" {
		t.Errorf("reader read %q from the task volume", got)
	}
	if got := waitFile(t, out+"/ls", 10*time.Second); got == "" {
		t.Errorf("borrower saw nothing of reader's volumes")
	}
	if c := container(sc, "writer"); c.LastStatus != "STOPPED" || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("writer: %s exit=%v", c.LastStatus, deref(c.ExitCode))
	}
	if sc.StopCode != "" {
		t.Errorf("a non-essential container's exit stopped the task: %s", sc.StopCode)
	}
	if out, err := exec.Command("docker", "volume", "inspect", "ecsd-"+a.TaskArn[len(a.TaskArn)-32:]+"-scratch").CombinedOutput(); err != nil {
		t.Errorf("task volume: %v %s", err, out)
	}
}

// A SUCCESS dependency that fails stops the task before the dependent starts.
func TestDependsOnSuccessFails(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	init := busybox("init", "sh", "-c", "exit 4")
	init.Essential = boolp(false)
	app := busybox("app", "sleep", "300")
	app.DependsOn = []ecs.ContainerDependency{{ContainerName: "init", Condition: ecs.ContainerConditionSUCCESS}}
	a := assignment("successfails", ecs.NetworkModeBridge, init, app)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if sc.StopCode != "TaskFailedToStart" {
		t.Errorf("stopCode=%q reason=%q", sc.StopCode, sc.StoppedReason)
	}
	if c := container(sc, "app"); c.RuntimeID != "" {
		if st, err := h.rt.Inspect(context.Background(), c.RuntimeID); err == nil && !st.StartedAt.IsZero() {
			t.Error("app was started although its SUCCESS dependency failed")
		}
	}
	if c := container(sc, "init"); c.ExitCode == nil || *c.ExitCode != 4 {
		t.Errorf("init exit = %v", deref(c.ExitCode))
	}
}
