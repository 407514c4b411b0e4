package apiserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

// taskHarness is a server over an in-memory store, called directly (no HTTP).
type taskHarness struct {
	srv   *Server
	st    store.Store
	cache *cache.Cache
	scope resource.Scope
	now   time.Time
}

func startTaskHarness(t *testing.T) *taskHarness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	c := cache.New(st, resource.Root, resource.Decode, log)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not ready")
	}
	h := &taskHarness{st: st, cache: c, scope: resource.Scope{Account: "123456789012", Region: "us-east-1"},
		now: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
	srv, err := New(Config{Logger: log, Now: func() time.Time { return h.now }}, st, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h
}

func (h *taskHarness) call() *Call {
	return &Call{ctx: context.Background(), Op: "test", RequestID: "req",
		Identity: auth.Identity{Account: h.scope.Account, Region: h.scope.Region, Principal: "arn:aws:iam::123456789012:root"},
		Now:      h.now, s: h.srv}
}

func (h *taskHarness) put(t *testing.T, key string, v any) {
	t.Helper()
	rev, err := h.st.Txn(context.Background(), store.Put(key, resource.Encode(v)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.cache.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// setup stores cluster "c" with agent instance "i1" (1024 CPU, 1024 MiB) and
// runs one task of a definition with a container "app" (256 MiB, host port
// 8080) on it.
func (h *taskHarness) setup(t *testing.T) *resource.Task {
	t.Helper()
	c := h.call()
	if _, err := h.srv.createCluster(c, &ecs.CreateClusterRequest{ClusterName: "c"}); err != nil {
		t.Fatal(err)
	}
	ci := &resource.ContainerInstance{Scope: h.scope, Cluster: "c", ID: "i1", SecretHash: "hash"}
	ci.ContainerInstanceArn = h.scope.ContainerInstanceARN("c", "i1")
	ci.Status = resource.InstanceActive
	ci.RegisteredResources = []ecs.Resource{{Name: "CPU", IntegerValue: 1024}, {Name: "MEMORY", IntegerValue: 1024}}
	h.put(t, h.scope.ContainerInstanceKey("c", "i1"), ci)
	h.put(t, h.scope.PresenceKey("c", "i1"), &resource.Presence{LastHeartbeat: h.now, Connected: true})
	mem := int32(256)
	host, port := int32(8080), int32(80)
	if _, err := h.srv.registerTaskDefinition(c, &ecs.RegisterTaskDefinitionRequest{Family: "web", ContainerDefinitions: []ecs.ContainerDefinition{{
		Name: "app", Image: "busybox", Memory: &mem, PortMappings: []ecs.PortMapping{{ContainerPort: &port, HostPort: &host}},
	}}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.srv.runTask(c, &ecs.RunTaskRequest{Cluster: "c", TaskDefinition: "web"})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("run: %v %+v", err, out)
	}
	return h.task(t, out.Tasks[0].TaskArn)
}

func (h *taskHarness) task(t *testing.T, arn string) *resource.Task {
	t.Helper()
	id, _ := parseTaskRef(h.scope, "c", arn)
	tk, _, ok := peekTask(h.cache.Snapshot(), h.scope, "c", id)
	if !ok {
		t.Fatalf("task %s missing", arn)
	}
	return tk
}

func (h *taskHarness) used(t *testing.T) resource.Usage {
	t.Helper()
	ci, ok := Peek[resource.ContainerInstance](h.cache.Snapshot(), h.scope.ContainerInstanceKey("c", "i1"))
	if !ok {
		t.Fatal("instance missing")
	}
	return ci.Used
}

func TestStateChangeOrdering(t *testing.T) {
	h := startTaskHarness(t)
	tk := h.setup(t)
	arn := tk.TaskArn
	apply := func(inst string, sc agentapi.StateChange) error {
		sc.TaskArn = arn
		return h.srv.applyStateChange(context.Background(), h.scope, "c", h.scope.ContainerInstanceKey("c", inst), &sc)
	}
	if u := h.used(t); u.Memory != 256 || len(u.TCPPorts) != 1 {
		t.Fatalf("charged %+v", u)
	}

	if err := apply("i1", agentapi.StateChange{Status: "RUNNING", Containers: []agentapi.ContainerState{{Name: "app", LastStatus: "RUNNING", RuntimeID: "r1"}}}); err != nil {
		t.Fatal(err)
	}
	cur := h.task(t, arn)
	if cur.LastStatus != "RUNNING" || cur.Version != 2 || cur.StartedAt == nil || cur.Containers[0].RuntimeId != "r1" {
		t.Fatalf("after RUNNING: %s v%d started %v runtime %q", cur.LastStatus, cur.Version, cur.StartedAt, cur.Containers[0].RuntimeId)
	}

	// A repeat changes nothing (no write, no version bump).
	if err := apply("i1", agentapi.StateChange{Status: "RUNNING", Containers: []agentapi.ContainerState{{Name: "app", LastStatus: "RUNNING", RuntimeID: "r1"}}}); err != nil {
		t.Fatal(err)
	}
	if v := h.task(t, arn).Version; v != 2 {
		t.Errorf("repeat bumped the version to %d", v)
	}

	rejects := []struct {
		name  string
		inst  string
		sc    agentapi.StateChange
		stale bool
	}{
		{"backward", "i1", agentapi.StateChange{Status: "PENDING"}, true},
		{"unknown status", "i1", agentapi.StateChange{Status: "WALKING"}, false},
		{"another instance", "i2", agentapi.StateChange{Status: "RUNNING"}, false},
		{"unknown container", "i1", agentapi.StateChange{Status: "RUNNING", Containers: []agentapi.ContainerState{{Name: "ghost", LastStatus: "RUNNING"}}}, false},
		{"bad container status", "i1", agentapi.StateChange{Status: "RUNNING", Containers: []agentapi.ContainerState{{Name: "app", LastStatus: "SLEEPY"}}}, false},
	}
	for _, r := range rejects {
		err := apply(r.inst, r.sc)
		if err == nil {
			t.Errorf("%s: accepted", r.name)
			continue
		}
		var ee *ecs.Error
		if !errors.As(err, &ee) || ee.Code != ecs.CodeInvalidParameter {
			t.Errorf("%s: error %v is not an InvalidParameterException", r.name, err)
		}
		if errors.Is(err, errStaleStateChange) != r.stale {
			t.Errorf("%s: stale = %v", r.name, !r.stale)
		}
	}
	if cur := h.task(t, arn); cur.LastStatus != "RUNNING" || cur.Version != 2 {
		t.Fatalf("rejected reports changed the task: %s v%d", cur.LastStatus, cur.Version)
	}
	// The internal pause container is ignored, not an error.
	if err := apply("i1", agentapi.StateChange{Status: "RUNNING", Containers: []agentapi.ContainerState{{Name: "~internal~ecs~pause", LastStatus: "RUNNING"}}}); err != nil {
		t.Errorf("pause container: %v", err)
	}

	exit := int32(1)
	if err := apply("i1", agentapi.StateChange{Status: "STOPPING", StopCode: resource.StopEssentialContainerExited, StoppedReason: "Essential container in task exited",
		Containers: []agentapi.ContainerState{{Name: "app", LastStatus: "STOPPED", ExitCode: &exit}}}); err != nil {
		t.Fatal(err)
	}
	cur = h.task(t, arn)
	if cur.DesiredStatus != "STOPPED" || cur.StoppingAt == nil || cur.StopCode != "EssentialContainerExited" || cur.Released {
		t.Errorf("stopping: desired %s stoppingAt %v code %s released %v", cur.DesiredStatus, cur.StoppingAt, cur.StopCode, cur.Released)
	}
	if u := h.used(t); u.Memory != 256 {
		t.Errorf("released before STOPPED: %+v", u)
	}
	// A late container report cannot move the container back.
	if err := apply("i1", agentapi.StateChange{Status: "STOPPING", Containers: []agentapi.ContainerState{{Name: "app", LastStatus: "RUNNING"}}}); err != nil {
		t.Fatal(err)
	}
	if c := h.task(t, arn).Containers[0]; c.LastStatus != "STOPPED" || c.ExitCode == nil || *c.ExitCode != 1 {
		t.Errorf("container moved back: %+v", c)
	}

	h.now = h.now.Add(time.Minute)
	if err := apply("i1", agentapi.StateChange{Status: "STOPPED", StopCode: "TaskFailedToStart"}); err != nil {
		t.Fatal(err)
	}
	cur = h.task(t, arn)
	if cur.LastStatus != "STOPPED" || !cur.Released || cur.StoppedAt == nil || !cur.StoppedAt.Equal(h.now) || cur.StopCode != "EssentialContainerExited" {
		t.Errorf("stopped: %s released %v stoppedAt %v code %s", cur.LastStatus, cur.Released, cur.StoppedAt, cur.StopCode)
	}
	if u := h.used(t); u.Memory != 0 || u.CPU != 0 || len(u.TCPPorts) != 0 {
		t.Errorf("not released: %+v", u)
	}
	v := cur.Version

	// Released exactly once: a repeated STOPPED is a no-op, an older report is
	// stale, and the instance's accounting does not move again.
	if err := apply("i1", agentapi.StateChange{Status: "STOPPED"}); err != nil {
		t.Errorf("repeat STOPPED: %v", err)
	}
	if err := apply("i1", agentapi.StateChange{Status: "RUNNING"}); !errors.Is(err, errStaleStateChange) {
		t.Errorf("RUNNING after STOPPED: %v", err)
	}
	if h.task(t, arn).Version != v {
		t.Error("a report after STOPPED changed the task")
	}
	// Another task charges the instance; a stray STOPPED for the first must
	// not give its resources back a second time.
	h.put(t, h.scope.PresenceKey("c", "i1"), &resource.Presence{LastHeartbeat: h.now, Connected: true})
	out, err := h.srv.runTask(h.call(), &ecs.RunTaskRequest{Cluster: "c", TaskDefinition: "web"})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("rerun: %v %+v", err, out)
	}
	_ = apply("i1", agentapi.StateChange{Status: "STOPPED"})
	if u := h.used(t); u.Memory != 256 || len(u.TCPPorts) != 1 {
		t.Errorf("second task's charge disturbed: %+v", u)
	}
}

func TestStateChangeAttachmentsAndConnectivity(t *testing.T) {
	h := startTaskHarness(t)
	tk := h.setup(t)
	tk = Clone(tk)
	tk.Attachments = []ecs.Attachment{{Id: "eni-1", Type: "ElasticNetworkInterface", Status: "PRECREATED", Details: []ecs.KeyValuePair{{Name: "subnetId", Value: "subnet-1"}}}}
	tk.LastStatus = "PROVISIONING"
	h.put(t, h.scope.TaskKey("c", tk.ID), tk)

	at := h.now.Add(-time.Second)
	sc := &agentapi.StateChange{TaskArn: tk.TaskArn, Status: "PENDING", Connectivity: "CONNECTED", ConnectivityAt: &at,
		Attachments: []ecs.Attachment{{Id: "eni-1", Status: "ATTACHED", Details: []ecs.KeyValuePair{{Name: "privateIPv4Address", Value: "10.0.0.5"}, {Name: "subnetId", Value: "subnet-1"}}}}}
	if err := h.srv.applyStateChange(context.Background(), h.scope, "c", h.scope.ContainerInstanceKey("c", "i1"), sc); err != nil {
		t.Fatal(err)
	}
	cur := h.task(t, tk.TaskArn)
	a := cur.Attachments[0]
	if a.Status != "ATTACHED" || len(a.Details) != 2 || a.Details[1].Value != "10.0.0.5" {
		t.Errorf("attachment %+v", a)
	}
	if cur.Connectivity != "CONNECTED" || cur.ConnectivityAt == nil || !cur.ConnectivityAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("connectivity %s at %v", cur.Connectivity, cur.ConnectivityAt)
	}
	if cur.StartedAt != nil {
		t.Error("startedAt set before RUNNING")
	}
}

func TestStateChangeStopCollectsDeletedDefinition(t *testing.T) {
	h := startTaskHarness(t)
	tk := h.setup(t)
	c := h.call()
	if _, err := h.srv.deregisterTaskDefinition(c, &ecs.DeregisterTaskDefinitionRequest{TaskDefinition: "web:1"}); err != nil {
		t.Fatal(err)
	}
	out, err := h.srv.deleteTaskDefinitions(c, &ecs.DeleteTaskDefinitionsRequest{TaskDefinitions: []string{"web:1"}})
	if err != nil || len(out.TaskDefinitions) != 1 || out.TaskDefinitions[0].Status != ecs.TaskDefinitionStatusDELETEINPROGRESS {
		t.Fatalf("delete: %v %+v", err, out)
	}
	key := h.scope.TaskDefinitionKey("web", 1)
	if _, ok := h.cache.Snapshot().Get(key); !ok {
		t.Fatal("a revision in use by a task was removed")
	}
	if err := h.srv.applyStateChange(context.Background(), h.scope, "c", h.scope.ContainerInstanceKey("c", "i1"), &agentapi.StateChange{TaskArn: tk.TaskArn, Status: "STOPPED"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, ok := h.cache.Snapshot().Get(key); !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the revision was not removed when its last task stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
