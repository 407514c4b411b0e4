package nodegroup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/controller/nodegroup"
	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

var scope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeProv records calls; failLaunch makes launches fail.
type fakeProv struct {
	mu          sync.Mutex
	launches    []provisioner.LaunchRequest
	terminates  []provisioner.TerminateRequest
	failLaunch  error
	failTerm    error
	launchDelay time.Duration
}

func (p *fakeProv) Launch(ctx context.Context, req provisioner.LaunchRequest) (string, error) {
	if p.launchDelay > 0 {
		time.Sleep(p.launchDelay)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.launches = append(p.launches, req)
	if p.failLaunch != nil {
		return "", p.failLaunch
	}
	return "machine-" + req.NodeID, nil
}

func (p *fakeProv) Terminate(ctx context.Context, req provisioner.TerminateRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failTerm != nil {
		return p.failTerm
	}
	p.terminates = append(p.terminates, req)
	return nil
}

func (p *fakeProv) counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.launches), len(p.terminates)
}

func (p *fakeProv) terminated() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, r := range p.terminates {
		ids = append(ids, r.NodeID)
	}
	sort.Strings(ids)
	return ids
}

type world struct {
	t     *testing.T
	st    store.Store
	cache *cache.Cache
	clk   *clock
	prov  *fakeProv
	ctl   *nodegroup.Controller
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
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
	w := &world{t: t, st: st, cache: c, clk: &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}, prov: &fakeProv{}}
	w.ctl = w.controller()
	return w
}

func (w *world) controller() *nodegroup.Controller {
	ctl, err := nodegroup.New(nodegroup.Config{Store: w.st, Cache: w.cache, Provisioner: w.prov,
		ServerURL: "http://127.0.0.1:9", JoinToken: "tok", Now: w.clk.Now, Logger: discard(),
		LaunchTimeout: 2 * time.Minute, RetryDelay: 10 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	return ctl
}

func (w *world) put(key string, v any) {
	w.t.Helper()
	rev, err := w.st.Txn(context.Background(), store.Put(key, resource.Encode(v)))
	if err != nil {
		w.t.Fatal(err)
	}
	w.sync(rev)
}

func (w *world) sync(rev int64) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rev == 0 {
		kvs, r, err := w.st.List(ctx, resource.Root)
		_ = kvs
		if err != nil {
			w.t.Fatal(err)
		}
		rev = r
	}
	if err := w.cache.WaitFor(ctx, rev); err != nil {
		w.t.Fatal(err)
	}
}

// pass runs one reconcile, waits for its provisioner calls and for the cache.
func (w *world) pass() {
	w.t.Helper()
	if err := w.ctl.Reconcile(context.Background()); err != nil {
		w.t.Fatalf("reconcile: %v", err)
	}
	w.ctl.Wait()
	w.sync(0)
}

func (w *world) group(name string) *resource.NodeGroup {
	w.t.Helper()
	e, ok := w.cache.Snapshot().Get(scope.NodeGroupKey(name))
	if !ok {
		return nil
	}
	return e.Obj.(*resource.NodeGroup)
}

func (w *world) newGroup(name string, desired int, zones ...string) {
	w.t.Helper()
	g := &resource.NodeGroup{Scope: scope, Name: name, ID: "id-" + name, ARN: scope.NodeGroupARN("id-"+name, name),
		Cluster: "default", Min: 0, Max: 10, Desired: desired, NextNode: 1, CreatedAt: w.clk.Now(),
		Template: resource.NodeTemplate{InstanceType: "ecsd.small", CPU: 1024, Memory: 2048, AvailabilityZones: zones, Attributes: map[string]string{"tier": "a"}}}
	w.put(scope.NodeGroupKey(name), g)
}

func (w *world) setGroup(name string, fn func(g *resource.NodeGroup)) {
	w.t.Helper()
	g := *w.group(name)
	g.Nodes = append([]resource.Node(nil), g.Nodes...)
	fn(&g)
	w.put(scope.NodeGroupKey(name), &g)
}

// register plays the agent of a node: a container instance in the cluster.
func (w *world) register(group, nodeID string) string {
	w.t.Helper()
	id := "ci-" + nodeID
	ci := &resource.ContainerInstance{Scope: scope, Cluster: "default", ID: id, NodeGroup: group, NodeID: nodeID, SecretHash: "x"}
	ci.ContainerInstanceArn = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/" + id
	ci.Status = resource.InstanceActive
	w.put(scope.ContainerInstanceKey("default", id), ci)
	return id
}

func (w *world) instance(id string) *resource.ContainerInstance {
	e, ok := w.cache.Snapshot().Get(scope.ContainerInstanceKey("default", id))
	if !ok {
		return nil
	}
	return e.Obj.(*resource.ContainerInstance)
}

func (w *world) runTask(taskID, instanceID, status string) {
	w.t.Helper()
	tk := &resource.Task{Scope: scope, Cluster: "default", ID: taskID, InstanceID: instanceID}
	tk.LastStatus = status
	tk.TaskArn = scope.TaskARN("default", taskID)
	w.put(scope.TaskKey("default", taskID), tk)
}

func states(g *resource.NodeGroup) string {
	var s []string
	for _, n := range g.Nodes {
		s = append(s, n.ID+":"+n.State)
	}
	return fmt.Sprint(s)
}

func TestScaleOutLaunchesAndLinksInstances(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 3, "us-east-1a", "us-east-1b")
	w.pass()
	g := w.group("web")
	if got := states(g); got != "[web-1:Pending web-2:Pending web-3:Pending]" {
		t.Fatalf("after scale-out: %s", got)
	}
	if g.NextNode != 4 {
		t.Errorf("NextNode %d", g.NextNode)
	}
	zones := map[string]int{}
	for _, n := range g.Nodes {
		zones[n.AvailabilityZone]++
		if n.ProviderID != "machine-"+n.ID {
			t.Errorf("%s: provider id %q", n.ID, n.ProviderID)
		}
	}
	if zones["us-east-1a"] != 2 || zones["us-east-1b"] != 1 {
		t.Errorf("zones in turn: %v", zones)
	}
	req := w.prov.launches[0]
	if req.Group != "web" || req.Cluster != scope.ClusterARN("default") || req.ServerURL != "http://127.0.0.1:9" || req.JoinToken != "tok" ||
		req.CPU != 1024 || req.Memory != 2048 || req.InstanceType != "ecsd.small" || req.Attributes["tier"] != "a" || req.Account != scope.Account {
		t.Errorf("launch request: %+v", req)
	}
	// Passes while the agents start launch nothing more.
	w.pass()
	if l, _ := w.prov.counts(); l != 3 {
		t.Fatalf("launches after a second pass: %d", l)
	}
	w.register("web", "web-1")
	w.register("web", "web-2")
	w.pass()
	g = w.group("web")
	if got := states(g); got != "[web-1:InService web-2:InService web-3:Pending]" {
		t.Fatalf("after registration: %s", got)
	}
	if g.Nodes[0].ContainerInstanceArn != w.instance("ci-web-1").ContainerInstanceArn {
		t.Errorf("instance ARN not linked: %+v", g.Nodes[0])
	}
}

func TestScaleInNeverRemovesBusyOrProtectedNodes(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 3)
	w.pass()
	for _, id := range []string{"web-1", "web-2", "web-3"} {
		w.register("web", id)
	}
	w.pass()
	w.runTask("t1", "ci-web-1", "RUNNING")
	w.runTask("t0", "ci-web-3", "STOPPED") // a stopped task does not hold a node
	w.setGroup("web", func(g *resource.NodeGroup) {
		g.Desired = 0
		g.Nodes[1].ProtectedFromScaleIn = true
	})
	w.pass()
	if got := w.prov.terminated(); fmt.Sprint(got) != "[web-3]" {
		t.Fatalf("terminated %v; want only the idle, unprotected web-3", got)
	}
	if ci := w.instance("ci-web-3"); ci.Status != resource.InstanceInactive || ci.DeregisteredAt == nil {
		t.Errorf("web-3's instance not deregistered: %+v", ci.Status)
	}
	if ci := w.instance("ci-web-1"); ci.Status != resource.InstanceActive {
		t.Errorf("busy instance touched: %s", ci.Status)
	}
	if got := states(w.group("web")); got != "[web-1:InService web-2:InService]" {
		t.Fatalf("nodes: %s", got)
	}
	// Passes keep the busy node while its task runs.
	w.pass()
	if _, n := w.prov.counts(); n != 1 {
		t.Fatalf("terminates %d", n)
	}
	w.runTask("t1", "ci-web-1", "STOPPED")
	w.pass()
	if got := states(w.group("web")); got != "[web-2:InService]" {
		t.Fatalf("after the task stopped: %s", got)
	}
	w.setGroup("web", func(g *resource.NodeGroup) { g.Nodes[0].ProtectedFromScaleIn = false })
	w.pass()
	if g := w.group("web"); len(g.Nodes) != 0 {
		t.Fatalf("after protection lifted: %s", states(g))
	}
}

func TestTwoLeadersNeverDoubleLaunch(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 4)
	a, b := w.controller(), w.controller()
	var wg sync.WaitGroup
	for _, c := range []*nodegroup.Controller{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Reconcile(context.Background()) }()
	}
	wg.Wait()
	a.Wait()
	b.Wait()
	w.sync(0)
	if l, _ := w.prov.counts(); l != 4 {
		t.Fatalf("launches %d; want 4", l)
	}
	if g := w.group("web"); len(g.Nodes) != 4 {
		t.Fatalf("nodes: %s", states(g))
	}
}

func TestFailedAndLateLaunchesAreReplaced(t *testing.T) {
	w := newWorld(t)
	w.prov.failLaunch = errors.New("no capacity")
	w.newGroup("web", 1)
	w.pass()
	n := w.group("web").Nodes[0]
	if n.State != resource.NodePending || n.LastError == "" || n.ProviderID != "" {
		t.Fatalf("failed launch: %+v", n)
	}
	// Within the retry delay nothing happens.
	w.pass()
	if l, _ := w.prov.counts(); l != 1 {
		t.Fatalf("retried too soon: %d launches", l)
	}
	w.prov.mu.Lock()
	w.prov.failLaunch = nil
	w.prov.mu.Unlock()
	w.clk.Add(11 * time.Second)
	w.pass() // web-1 given up, web-2 launched
	w.pass() // web-1's removal recorded
	g := w.group("web")
	if got := states(g); got != "[web-2:Pending]" {
		t.Fatalf("after retry: %s", got)
	}
	// web-2's agent never registers: after the launch timeout it is replaced.
	w.clk.Add(2*time.Minute + time.Second)
	w.pass()
	w.pass()
	g = w.group("web")
	if got := states(g); got != "[web-3:Pending]" {
		t.Fatalf("after launch timeout: %s", got)
	}
	if got := w.prov.terminated(); fmt.Sprint(got) != "[web-1 web-2]" {
		t.Errorf("terminated %v", got)
	}
}

func TestTerminateFailureIsRetried(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 1)
	w.pass()
	w.register("web", "web-1")
	w.pass()
	w.prov.failTerm = errors.New("api down")
	w.setGroup("web", func(g *resource.NodeGroup) { g.Desired = 0 })
	w.pass()
	n := w.group("web").Nodes[0]
	if n.State != resource.NodeTerminating || n.LastError == "" {
		t.Fatalf("after failed terminate: %+v", n)
	}
	if w.instance("ci-web-1").Status == resource.InstanceInactive {
		t.Fatal("instance deregistered though its machine was not terminated")
	}
	w.prov.mu.Lock()
	w.prov.failTerm = nil
	w.prov.mu.Unlock()
	w.pass()
	if len(w.group("web").Nodes) != 1 {
		t.Fatal("retried before the retry delay")
	}
	w.clk.Add(11 * time.Second)
	w.pass()
	if g := w.group("web"); len(g.Nodes) != 0 {
		t.Fatalf("not removed after retry: %s", states(g))
	}
}

func TestDeleteGroup(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 2)
	w.pass()
	w.register("web", "web-1")
	w.register("web", "web-2")
	w.pass()
	w.runTask("t1", "ci-web-1", "RUNNING")
	w.setGroup("web", func(g *resource.NodeGroup) { g.Status = resource.NodeGroupDeleting; g.Desired, g.Min = 0, 0 })
	w.pass()
	w.pass()
	if got := states(w.group("web")); got != "[web-1:InService]" {
		t.Fatalf("deleting without force keeps the busy node: %s", got)
	}
	w.setGroup("web", func(g *resource.NodeGroup) { g.ForceDelete = true })
	w.pass()
	w.pass()
	if g := w.group("web"); g != nil {
		t.Fatalf("group not deleted: %s", states(g))
	}
	if w.instance("ci-web-1").Status != resource.InstanceInactive {
		t.Error("force-deleted node's instance still registered")
	}
}

func TestInstancesJoinTheGroupsCapacityProvider(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 1)
	w.pass()
	w.register("web", "web-1")
	w.pass()
	if name := w.instance("ci-web-1").CapacityProviderName; name != "" {
		t.Fatalf("provider %q without a provider", name)
	}
	cp := &resource.CapacityProvider{Scope: scope, NodeGroup: "web"}
	cp.Name, cp.Status = "web-cp", ecs.CapacityProviderStatusACTIVE
	w.put(scope.CapacityProviderKey("web-cp"), cp)
	w.pass()
	if name := w.instance("ci-web-1").CapacityProviderName; name != "web-cp" {
		t.Fatalf("capacity provider name %q", name)
	}
}

func TestRunReactsAndStops(t *testing.T) {
	w := newWorld(t)
	ctl, err := nodegroup.New(nodegroup.Config{Store: w.st, Cache: w.cache, Provisioner: w.prov, Now: w.clk.Now, Logger: discard(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	w.newGroup("web", 2) // a change wakes the controller long before the hour
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l, _ := w.prov.counts(); l == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("controller did not react to the new group")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestUnhealthyNodesAreReplaced(t *testing.T) {
	w := newWorld(t)
	w.newGroup("web", 2)
	w.pass()
	w.register("web", "web-1")
	w.register("web", "web-2")
	w.pass()
	w.put(scope.PresenceKey("default", "ci-web-1"), &resource.Presence{LastHeartbeat: w.clk.Now(), Connected: true})
	w.put(scope.PresenceKey("default", "ci-web-2"), &resource.Presence{LastHeartbeat: w.clk.Now().Add(-time.Minute), Connected: false})
	w.runTask("t2", "ci-web-2", "RUNNING")
	w.pass()
	if got := states(w.group("web")); got != "[web-1:InService web-2:InService]" {
		t.Fatalf("within the grace: %s", got)
	}
	w.clk.Add(2*time.Minute + time.Second) // web-2 unheard for 3 min; web-1's heartbeat is 2 min old
	w.pass()
	w.pass()
	if got := states(w.group("web")); got != "[web-1:InService web-3:Pending]" {
		t.Fatalf("after the grace: %s", got)
	}
	if w.instance("ci-web-2").Status != resource.InstanceInactive {
		t.Error("dead node's instance still registered")
	}
}
