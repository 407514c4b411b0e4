package engine_test

import (
	"context"
	"sort"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

func runtimeIDs(sc agentapi.StateChange) []string {
	var ids []string
	for _, c := range sc.Containers {
		ids = append(ids, c.RuntimeID)
	}
	sort.Strings(ids)
	return ids
}

// A new engine over the same runtime re-attaches to the containers of the
// previous one: tasks the server still wants keep their containers (no
// duplicates), one whose essential container died meanwhile is stopped, and
// one the server no longer lists is stopped and removed.
func TestRecovery(t *testing.T) {
	t.Parallel()
	h1 := start(t, "", func(c *engineConfig) { c.PausePoolSize = 1 })
	keep := assignment("keep", ecs.NetworkModeBridge, busybox("a", "sleep", "300"), busybox("b", "sleep", "300"))
	died := assignment("died", ecs.NetworkModeBridge, busybox("main", "sleep", "300"))
	drop := assignment("drop", ecs.NetworkModeAwsvpc, busybox("main", "sleep", "300"))
	h1.eng.Apply(agentapi.Tasks{Full: true, Tasks: []agentapi.TaskAssignment{keep, died, drop}})
	keepSC := h1.rec.waitStatus(t, keep.TaskArn, "RUNNING", 30*time.Second)
	diedSC := h1.rec.waitStatus(t, died.TaskArn, "RUNNING", 30*time.Second)
	h1.rec.waitStatus(t, drop.TaskArn, "RUNNING", 30*time.Second)
	h1.stop()

	ctx := context.Background()
	if err := h1.rt.Kill(ctx, container(diedSC, "main").RuntimeID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	// The agent comes back; the server's first full list arrives.
	h2 := start(t, h1.instance, func(c *engineConfig) { c.PausePoolSize = 1 })
	h2.eng.Apply(agentapi.Tasks{Full: true, Tasks: []agentapi.TaskAssignment{keep, died}})

	sc := h2.rec.waitStatus(t, keep.TaskArn, "RUNNING", 30*time.Second)
	if got, want := runtimeIDs(sc), runtimeIDs(keepSC); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("re-attached containers %v, want %v", got, want)
	}
	if n := len(taskContainers(t, h2.rt, keep.TaskArn)); n != 2 {
		t.Errorf("%d containers for the kept task, want 2", n)
	}
	// Its metadata endpoint still answers for the re-attached containers.
	st, err := h2.rt.Inspect(ctx, container(keepSC, "a").RuntimeID)
	if err != nil {
		t.Fatal(err)
	}
	if task, id, ok := h2.eng.Lookup(st.Labels["ecsd.metadata-token"]); !ok || task.TaskARN != keep.TaskArn || id != st.ID {
		t.Errorf("metadata lookup after re-attach: ok=%v arn=%s id=%s", ok, task.TaskARN, id)
	}

	sc = h2.rec.waitStatus(t, died.TaskArn, "STOPPED", 30*time.Second)
	if sc.StopCode != "EssentialContainerExited" || container(sc, "main").ExitCode == nil || *container(sc, "main").ExitCode != 137 {
		t.Errorf("died task: %s", h2.rec.summary(died.TaskArn))
	}

	deadline := time.Now().Add(30 * time.Second)
	for len(taskContainers(t, h2.rt, drop.TaskArn)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("containers of the unlisted task are still there: %d", len(taskContainers(t, h2.rt, drop.TaskArn)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(h2.rec.of(drop.TaskArn)) != 0 {
		t.Errorf("reported a task the server does not list: %s", h2.rec.summary(drop.TaskArn))
	}
	// Nothing is orphaned: every pause container is the pool's or a task's.
	list, _ := h2.rt.List(ctx, map[string]string{"ecsd.instance": h1.instance, "ecsd.kind": "pause"}, true)
	if len(list) > 1 {
		names := []string{}
		for _, c := range list {
			names = append(names, c.Name)
		}
		t.Errorf("pause containers left: %v", names)
	}
}
