package capacity_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/controller/capacity"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

var scope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

const cluster = "default"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func put(t *testing.T, st store.Store, key string, v any) int64 {
	t.Helper()
	rev, err := st.Txn(context.Background(), store.Put(key, resource.Encode(v)))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func startCache(t *testing.T, st store.Store) *cache.Cache {
	t.Helper()
	c := cache.New(st, resource.Root, resource.Decode, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not ready")
	}
	return c
}

func wait(t *testing.T, c *cache.Cache, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// catchUp waits until the cache has everything the store has.
func catchUp(t *testing.T, c *cache.Cache, st *memstore.Store) { t.Helper(); wait(t, c, st.Rev()) }

func provider(name, group string) *resource.CapacityProvider {
	i := func(v int32) *int32 { return &v }
	p := &resource.CapacityProvider{Scope: scope, NodeGroup: group}
	p.Name = name
	p.Status = ecs.CapacityProviderStatusACTIVE
	p.CapacityProviderArn = scope.CapacityProviderARN(name)
	p.AutoScalingGroupProvider = &ecs.AutoScalingGroupProvider{
		AutoScalingGroupArn: scope.NodeGroupARN("0001", group),
		ManagedScaling: &ecs.ManagedScaling{Status: ecs.ManagedScalingStatusENABLED, TargetCapacity: i(100),
			MinimumScalingStepSize: i(1), MaximumScalingStepSize: i(10), InstanceWarmupPeriod: i(60)},
		ManagedTerminationProtection: ecs.ManagedTerminationProtectionENABLED,
	}
	return p
}

func nodeGroup(name string, desired int, nodes ...resource.Node) *resource.NodeGroup {
	return &resource.NodeGroup{Scope: scope, Name: name, ID: "0001", ARN: scope.NodeGroupARN("0001", name), Cluster: cluster,
		Min: 0, Max: 10, Desired: desired, Nodes: nodes,
		Template: resource.NodeTemplate{InstanceType: "t3.small", CPU: 1024, Memory: 2048}}
}

func instance(id, cp, node string, usedCPU, usedMem int64) *resource.ContainerInstance {
	ci := &resource.ContainerInstance{Scope: scope, Cluster: cluster, ID: id, NodeGroup: "ng", NodeID: node,
		Used: resource.Usage{CPU: usedCPU, Memory: usedMem}}
	ci.ContainerInstanceArn = scope.ContainerInstanceARN(cluster, id)
	ci.Status = resource.InstanceActive
	ci.CapacityProviderName = cp
	ci.RegisteredResources = []ecs.Resource{{Name: "CPU", Type: "INTEGER", IntegerValue: 1024}, {Name: "MEMORY", Type: "INTEGER", IntegerValue: 2048}}
	return ci
}

func task(id, status, instanceID, service string, cpu, mem int64) *resource.Task {
	t := &resource.Task{Scope: scope, Cluster: cluster, ID: id, InstanceID: instanceID, ServiceName: service,
		Reserved: resource.Usage{CPU: cpu, Memory: mem}}
	t.TaskArn = scope.TaskARN(cluster, id)
	t.LastStatus, t.DesiredStatus = status, "RUNNING"
	t.CapacityProviderName = "cp"
	if service != "" {
		t.Group = "service:" + service
	}
	return t
}

func service(name string, strategy ecs.SchedulingStrategy) *resource.Service {
	s := &resource.Service{Scope: scope, Cluster: cluster}
	s.ServiceName = name
	s.SchedulingStrategy = strategy
	return s
}

func get[T any](t *testing.T, st store.Store, key string) *T {
	t.Helper()
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := resource.Decode(key, kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*T)
}

func TestControllerScalesOutAndIn(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{now: t0}

	ngKey, cpKey := scope.NodeGroupKey("ng"), scope.CapacityProviderKey("cp")
	put(t, st, cpKey, provider("cp", "ng"))
	put(t, st, ngKey, nodeGroup("ng", 2,
		resource.Node{ID: "ng-1", State: resource.NodeInService, ContainerInstanceArn: scope.ContainerInstanceARN(cluster, "i1")},
		resource.Node{ID: "ng-2", State: resource.NodeInService, ContainerInstanceArn: scope.ContainerInstanceARN(cluster, "i2")}))
	put(t, st, scope.ContainerInstanceKey(cluster, "i1"), instance("i1", "cp", "ng-1", 1024, 2048)) // full: a web task
	put(t, st, scope.ContainerInstanceKey(cluster, "i2"), instance("i2", "cp", "ng-2", 256, 256))   // a daemon task only
	put(t, st, scope.ContainerInstanceKey(cluster, "other"), instance("other", "", "", 0, 0))       // not the provider's
	put(t, st, scope.ServiceKey(cluster, "web"), service("web", ecs.SchedulingStrategyREPLICA))
	put(t, st, scope.ServiceKey(cluster, "agent"), service("agent", ecs.SchedulingStrategyDAEMON))
	put(t, st, scope.TaskKey(cluster, "web1"), task("web1", "RUNNING", "i1", "web", 1024, 2048))
	put(t, st, scope.TaskKey(cluster, "agent1"), task("agent1", "RUNNING", "i2", "agent", 256, 256))
	put(t, st, scope.TaskKey(cluster, "wait1"), task("wait1", "PROVISIONING", "", "web", 1024, 2048))
	catchUp(t, c, st)

	ctl, err := capacity.New(capacity.Config{Store: st, Cache: c, Now: clk.Now, ScaleInDelay: 15 * time.Second, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ctl.Evaluate(context.Background())
	if err != nil || len(out) != 1 {
		t.Fatalf("evaluate: %v %+v", err, out)
	}
	d := out[0].Decision
	if d.N != 2 || d.M != 3 || d.Reservation != 150 || d.Desired != 3 || !out[0].WroteGroup || !out[0].WroteProvider {
		t.Fatalf("scale-out pass: %+v", out[0])
	}
	ng := get[resource.NodeGroup](t, st, ngKey)
	if ng.Desired != 3 || ng.LastScalingAt == nil || !ng.LastScalingAt.Equal(t0) {
		t.Fatalf("group desired %d last scaling %v; want 3 at %v", ng.Desired, ng.LastScalingAt, t0)
	}
	if !ng.Nodes[0].ProtectedFromScaleIn || ng.Nodes[1].ProtectedFromScaleIn {
		t.Fatalf("protection %+v; want the web node only", ng.Nodes)
	}
	cp := get[resource.CapacityProvider](t, st, cpKey)
	if cp.Reservation == nil || *cp.Reservation != 150 || cp.ReservationAt == nil || !cp.ReservationAt.Equal(t0) {
		t.Fatalf("provider reservation %v at %v; want 150", cp.Reservation, cp.ReservationAt)
	}

	// Seen again: nothing changes, nothing is written.
	catchUp(t, c, st)
	rev := st.Rev()
	clk.Add(time.Second)
	if out, err = ctl.Evaluate(context.Background()); err != nil || out[0].WroteGroup || out[0].WroteProvider || out[0].Decision.Scaled() {
		t.Fatalf("second pass: %v %+v", err, out)
	}
	if st.Rev() != rev {
		t.Fatal("second pass wrote")
	}

	// The work goes away: the waiting task is gone and the web task stopped.
	// The reservation falls to 0 at once; the group shrinks only after the
	// scale-in delay, and the daemon's instance does not hold it.
	kv, _ := st.Get(context.Background(), scope.TaskKey(cluster, "wait1"))
	if _, err := st.Txn(context.Background(), store.Delete(kv.Key, kv.Revision)); err != nil {
		t.Fatal(err)
	}
	put(t, st, scope.TaskKey(cluster, "web1"), task("web1", "STOPPED", "i1", "web", 1024, 2048))
	catchUp(t, c, st)
	clk.Add(time.Second)
	out, err = ctl.Evaluate(context.Background())
	if err != nil || out[0].Decision.Scaled() || out[0].Decision.Reason != capacity.ReasonScaleInDelay || out[0].Decision.Reservation != 0 {
		t.Fatalf("below target: %v %+v", err, out)
	}
	catchUp(t, c, st)
	ng = get[resource.NodeGroup](t, st, ngKey)
	if ng.Desired != 3 || ng.Nodes[0].ProtectedFromScaleIn {
		t.Fatalf("during delay: desired %d nodes %+v; want 3, protection cleared", ng.Desired, ng.Nodes)
	}
	if cp := get[resource.CapacityProvider](t, st, cpKey); *cp.Reservation != 0 {
		t.Fatalf("reservation %v; want 0", *cp.Reservation)
	}
	clk.Add(15 * time.Second)
	out, err = ctl.Evaluate(context.Background())
	if err != nil || out[0].Decision.Desired != 0 || out[0].Decision.Reason != capacity.ReasonScaleIn || !out[0].WroteGroup {
		t.Fatalf("after delay: %v %+v", err, out)
	}
	if ng := get[resource.NodeGroup](t, st, ngKey); ng.Desired != 0 {
		t.Fatalf("desired %d; want 0", ng.Desired)
	}
}

func TestControllerConflictIsRetried(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	put(t, st, scope.CapacityProviderKey("cp"), provider("cp", "ng"))
	put(t, st, scope.NodeGroupKey("ng"), nodeGroup("ng", 0))
	put(t, st, scope.TaskKey(cluster, "w"), task("w", "PROVISIONING", "", "", 512, 512))
	catchUp(t, c, st)
	// The snapshot the controller reads is stale: the node group changed in
	// the store since (the node group controller wrote it).
	ctl, _ := capacity.New(capacity.Config{Store: st, Cache: staleCache{c.Snapshot(), c}, Logger: discard()})
	put(t, st, scope.NodeGroupKey("ng"), nodeGroup("ng", 0))
	out, err := ctl.Evaluate(context.Background())
	if err != nil || len(out) != 1 || out[0].WroteGroup || out[0].Decision.Desired != 1 {
		t.Fatalf("stale pass: %v %+v", err, out)
	}
	if ng := get[resource.NodeGroup](t, st, scope.NodeGroupKey("ng")); ng.Desired != 0 {
		t.Fatal("a stale decision was written")
	}
}

// staleCache serves one fixed snapshot.
type staleCache struct {
	snap *cache.Snapshot
	c    *cache.Cache
}

func (s staleCache) Snapshot() *cache.Snapshot       { return s.snap }
func (s staleCache) Subscribe(fn func(cache.Change)) { s.c.Subscribe(fn) }

func TestControllerRunReactsToWaitingTask(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	put(t, st, scope.CapacityProviderKey("cp"), provider("cp", "ng"))
	put(t, st, scope.NodeGroupKey("ng"), nodeGroup("ng", 0))
	// A provider whose scaling is off and one being deleted are left alone.
	off := provider("off", "ng-off")
	off.AutoScalingGroupProvider.ManagedScaling.Status = ecs.ManagedScalingStatusDISABLED
	put(t, st, scope.CapacityProviderKey("off"), off)
	put(t, st, scope.NodeGroupKey("ng-off"), nodeGroup("ng-off", 0))
	gone := provider("gone", "ng-gone")
	gone.Status = ecs.CapacityProviderStatusINACTIVE
	put(t, st, scope.CapacityProviderKey("gone"), gone)
	put(t, st, scope.NodeGroupKey("ng-gone"), nodeGroup("ng-gone", 0))
	// Another scope's provider is seen too.
	other := resource.Scope{Account: "210987654321", Region: "eu-west-1"}
	op := provider("cp", "ng")
	op.Scope = other
	put(t, st, other.CapacityProviderKey("cp"), op)
	ong := nodeGroup("ng", 0)
	ong.Scope = other
	put(t, st, other.NodeGroupKey("ng"), ong)
	catchUp(t, c, st)

	ctl, err := capacity.New(capacity.Config{Store: st, Cache: c, Interval: time.Hour, Debounce: 20 * time.Millisecond, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()

	// The first pass publishes the reservations: 100 with nothing anywhere.
	waitFor(t, "initial reservation", func() bool {
		p := get[resource.CapacityProvider](t, st, scope.CapacityProviderKey("cp"))
		q := get[resource.CapacityProvider](t, st, other.CapacityProviderKey("cp"))
		return p.Reservation != nil && *p.Reservation == 100 && q.Reservation != nil && *q.Reservation == 100
	})
	start := time.Now()
	put(t, st, scope.TaskKey(cluster, "w"), task("w", "PROVISIONING", "", "", 512, 512))
	waitFor(t, "scale-out", func() bool {
		return get[resource.NodeGroup](t, st, scope.NodeGroupKey("ng")).Desired == 1
	})
	if el := time.Since(start); el > time.Second {
		t.Errorf("scale-out took %v; want within 1 s of the task waiting", el)
	}
	if p := get[resource.CapacityProvider](t, st, scope.CapacityProviderKey("cp")); *p.Reservation != 200 {
		t.Errorf("reservation %v; want 200", *p.Reservation)
	}
	for _, name := range []string{"off", "gone"} {
		if p := get[resource.CapacityProvider](t, st, scope.CapacityProviderKey(name)); p.Reservation != nil {
			t.Errorf("%s: reservation written", name)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
