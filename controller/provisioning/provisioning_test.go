package provisioning

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

var scope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

type env struct {
	st    store.Store
	cache *cache.Cache
	ctl   *Controller
	now   time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.New(st, resource.Root, resource.Decode, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	e := &env{st: st, cache: c, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	ctl, err := New(Config{Cache: c, Planner: planner.New(st, c), WaitTimeout: 10 * time.Minute, SpotWarning: time.Minute,
		Now: func() time.Time { return e.now }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = ctl
	return e
}

func (e *env) put(t *testing.T, key string, v any) {
	t.Helper()
	rev, err := e.st.Txn(context.Background(), store.Put(key, resource.Encode(v)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.cache.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

func (e *env) instance(t *testing.T, cluster, id, provider string, cpu, mem int32) {
	ci := &resource.ContainerInstance{Scope: scope, Cluster: cluster, ID: id, Fargate: cluster == resource.FargatePool}
	ci.ContainerInstanceArn = scope.ContainerInstanceARN(cluster, id)
	ci.Status = resource.InstanceActive
	ci.CapacityProviderName = provider
	ci.RegisteredResources = []ecs.Resource{{Name: "CPU", IntegerValue: cpu}, {Name: "MEMORY", IntegerValue: mem}}
	e.put(t, scope.ContainerInstanceKey(cluster, id), ci)
}

func (e *env) waitingTask(t *testing.T, id, provider string, created time.Time) {
	tk := &resource.Task{Scope: scope, Cluster: "c", ID: id, Reserved: resource.Usage{CPU: 512, Memory: 512}}
	tk.TaskArn = scope.TaskARN("c", id)
	tk.LastStatus, tk.DesiredStatus = "PROVISIONING", "RUNNING"
	tk.CapacityProviderName, tk.LaunchType = provider, ecs.LaunchTypeEC2
	tk.Group = "family:web"
	tk.CreatedAt = ecs.NewTime(created)
	e.put(t, scope.TaskKey("c", id), tk)
}

func (e *env) task(t *testing.T, id string) *resource.Task {
	t.Helper()
	ent, ok := e.cache.Snapshot().Get(scope.TaskKey("c", id))
	if !ok {
		t.Fatalf("task %s gone", id)
	}
	return ent.Obj.(*resource.Task)
}

func TestWaitingTasksArePlacedWhenCapacityComes(t *testing.T) {
	e := newEnv(t)
	e.waitingTask(t, "t1", "cp", e.now)
	e.waitingTask(t, "t2", "cp", e.now)
	e.waitingTask(t, "t3", "cp", e.now)
	// Nothing of the provider yet: nothing happens (an instance of another provider does not count).
	e.instance(t, "c", "other", "", 4096, 4096)
	if err := e.ctl.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !e.task(t, "t1").Waiting() {
		t.Fatal("placed on an instance of no provider")
	}
	// One instance with room for two: two are placed (PENDING, bridge), one still waits.
	e.instance(t, "c", "i1", "cp", 1024, 1024)
	if err := e.ctl.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	placed := 0
	for _, id := range []string{"t1", "t2", "t3"} {
		tk := e.task(t, id)
		if tk.InstanceID == "i1" {
			placed++
			if tk.LastStatus != "PENDING" || tk.ContainerInstanceArn == "" {
				t.Errorf("placed task %s: %s %q", id, tk.LastStatus, tk.ContainerInstanceArn)
			}
		}
	}
	if placed != 2 {
		t.Fatalf("placed %d, want 2", placed)
	}
	ent, _ := e.cache.Snapshot().Get(scope.ContainerInstanceKey("c", "i1"))
	if used := ent.Obj.(*resource.ContainerInstance).Used; used.CPU != 1024 || used.Memory != 1024 {
		t.Fatalf("instance charged %+v", used)
	}
	// The last one waits past the timeout: stopped, TaskFailedToStart.
	e.now = e.now.Add(11 * time.Minute)
	if err := e.ctl.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for _, id := range []string{"t1", "t2", "t3"} {
		if tk := e.task(t, id); tk.LastStatus == "STOPPED" {
			stopped++
			if tk.StopCode != "TaskFailedToStart" || tk.StoppedReason == "" || tk.InstanceID != "" {
				t.Errorf("expired task: %s %q %q", tk.StopCode, tk.StoppedReason, tk.InstanceID)
			}
		}
	}
	if stopped != 1 {
		t.Fatalf("stopped %d, want the one that never got room", stopped)
	}
}

func TestChooseVictims(t *testing.T) {
	mk := func(cpu, mem int64) *resource.Task {
		return &resource.Task{Reserved: resource.Usage{CPU: cpu, Memory: mem}}
	}
	spot := []*resource.Task{mk(256, 512), mk(1024, 2048), mk(512, 1024)}
	if got := chooseVictims(spot, 0, 0, 1024, 2048); len(got) != 1 || got[0].Reserved.CPU != 1024 {
		t.Errorf("largest first: %+v", got)
	}
	if got := chooseVictims(spot, 512, 1024, 1024, 2048); len(got) != 1 {
		t.Errorf("free room counts: %d victims", len(got))
	}
	if got := chooseVictims(spot, 0, 0, 4096, 8192); got != nil {
		t.Errorf("not enough even with all: %+v", got)
	}
	if got := chooseVictims(nil, 0, 0, 256, 512); got != nil {
		t.Errorf("no spot tasks: %+v", got)
	}
}
