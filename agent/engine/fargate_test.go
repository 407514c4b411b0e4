package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// Fargate tasks and stop timeouts against an in-memory runtime: which
// runtime each container is created with, the fallback to runc, and the
// assignment's stop timeout (a Spot interruption's warning) replacing the
// containers' own.

// fakeRuntime is an in-memory runtime.Runtime. Containers run from Start
// until Stop, which takes stopDelay (bounded by the timeout, like a process
// that ignores SIGTERM) and records the timeout it was given.
type fakeRuntime struct {
	mu         sync.Mutex
	n          int
	ctrs       map[string]*fakeCtr
	specs      []runtime.ContainerSpec // every Create, in order
	stops      map[string]time.Duration
	removed    []string
	stopDelay  time.Duration
	failCreate func(runtime.ContainerSpec) error
	failStart  func(runtime.ContainerSpec) error
	subs       []chan runtime.Event
}

type fakeCtr struct {
	spec  runtime.ContainerSpec
	state runtime.ContainerState
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{ctrs: map[string]*fakeCtr{}, stops: map[string]time.Duration{}}
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func (f *fakeRuntime) Ping(context.Context) error { return nil }
func (f *fakeRuntime) Info(context.Context) (runtime.Info, error) {
	return runtime.Info{Cores: 2, MemoryMiB: 4096, Runtimes: []string{"runc", "runsc"}}, nil
}
func (f *fakeRuntime) ImageExists(context.Context, string) (bool, error)         { return true, nil }
func (f *fakeRuntime) Pull(context.Context, string, *runtime.RegistryAuth) error { return nil }
func (f *fakeRuntime) Kill(ctx context.Context, id, _ string) error              { return f.Stop(ctx, id, 0) }
func (f *fakeRuntime) EnsureNetwork(context.Context, string, string) (string, error) {
	return "net", nil
}
func (f *fakeRuntime) RemoveNetwork(context.Context, string) error { return nil }
func (f *fakeRuntime) Stats(context.Context, string) (json.RawMessage, error) {
	return nil, errors.New("no stats")
}
func (f *fakeRuntime) emit(ev runtime.Event) {
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeRuntime) Create(_ context.Context, spec runtime.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	if f.failCreate != nil {
		if err := f.failCreate(spec); err != nil {
			return "", err
		}
	}
	f.n++
	id := fmt.Sprintf("c%03d", f.n)
	st := runtime.ContainerState{ID: id, Name: spec.Name, Image: spec.Image, ImageID: "sha256:img", Labels: spec.Labels,
		Status: runtime.StatusCreated, Created: time.Now(), NetworkMode: spec.NetworkMode}
	if spec.Network != nil {
		st.Networks = map[string]runtime.NetworkInfo{spec.Network.Name: {IPv4: fmt.Sprintf("10.9.0.%d", f.n+1), MAC: "02:42:0a:09:00:01", Gateway: "10.9.0.1", PrefixLen: 24}}
	}
	f.ctrs[id] = &fakeCtr{spec: spec, state: st}
	return id, nil
}

func (f *fakeRuntime) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if c == nil {
		return runtime.ErrNotFound
	}
	if f.failStart != nil {
		if err := f.failStart(c.spec); err != nil {
			return err
		}
	}
	c.state.Running, c.state.Status, c.state.StartedAt = true, runtime.StatusRunning, time.Now()
	return nil
}

func (f *fakeRuntime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	f.mu.Lock()
	c := f.ctrs[id]
	if c == nil {
		f.mu.Unlock()
		return nil
	}
	f.stops[c.spec.Labels[LabelContainer]] = timeout
	running := c.state.Running
	delay := min(f.stopDelay, timeout)
	f.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	f.mu.Lock()
	c.state.Running, c.state.Status, c.state.FinishedAt = false, runtime.StatusExited, time.Now()
	c.state.ExitCode = 0
	if f.stopDelay >= timeout {
		c.state.ExitCode = 137 // killed after the timeout
	}
	f.emit(runtime.Event{ContainerID: id, Action: runtime.EventDie, Labels: c.spec.Labels, Time: time.Now()})
	f.mu.Unlock()
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ctrs[id]; ok {
		delete(f.ctrs, id)
		f.removed = append(f.removed, id)
	}
	return nil
}

func (f *fakeRuntime) Inspect(_ context.Context, id string) (runtime.ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if c == nil {
		return runtime.ContainerState{}, fmt.Errorf("inspect %s: %w", id, runtime.ErrNotFound)
	}
	return c.state, nil
}

func (f *fakeRuntime) List(_ context.Context, labels map[string]string, _ bool) ([]runtime.ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.ContainerState
	for _, c := range f.ctrs {
		ok := true
		for k, v := range labels {
			if got, has := c.spec.Labels[k]; !has || (v != "" && got != v) {
				ok = false
			}
		}
		if ok {
			out = append(out, c.state)
		}
	}
	return out, nil
}

func (f *fakeRuntime) Events(ctx context.Context, _ map[string]string, _ time.Time) (<-chan runtime.Event, <-chan error) {
	ch := make(chan runtime.Event, 100)
	errs := make(chan error, 1)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		f.subs = slices.DeleteFunc(f.subs, func(c chan runtime.Event) bool { return c == ch })
		f.mu.Unlock()
		errs <- ctx.Err()
		close(ch)
	}()
	return ch, errs
}

// specsOf returns the create calls made for container name.
func (f *fakeRuntime) specsOf(name string) []runtime.ContainerSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.ContainerSpec
	for _, s := range f.specs {
		if s.Labels[LabelContainer] == name {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeRuntime) stopOf(name string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.stops[name]
	return d, ok
}

// reports records state changes with when they were made.
type reports struct {
	mu  sync.Mutex
	got []agentapi.StateChange
	at  []time.Time
}

func (r *reports) Report(sc agentapi.StateChange) {
	r.mu.Lock()
	r.got = append(r.got, sc)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
}

// wait returns the first report of arn with status, and when it came.
func (r *reports) wait(t *testing.T, arn, status string) (agentapi.StateChange, time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i, sc := range r.got {
			if sc.TaskArn == arn && sc.Status == status {
				r.mu.Unlock()
				return sc, r.at[i]
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var seen []string
	for _, sc := range r.got {
		if sc.TaskArn == arn {
			seen = append(seen, sc.Status+" "+sc.StoppedReason)
		}
	}
	t.Fatalf("task %s never reported %s; reported %q", arn, status, seen)
	return agentapi.StateChange{}, time.Time{}
}

func startFake(t *testing.T, f *fakeRuntime, fargateRuntime string) (*Engine, *reports) {
	t.Helper()
	rep := &reports{}
	e, err := New(Config{
		Runtime: f, Reporter: rep,
		InstanceArn: "arn:aws:ecs:us-east-1:123456789012:container-instance/~fargate/pool1",
		ClusterArn:  "arn:aws:ecs:us-east-1:123456789012:cluster/~fargate",
		Region:      "us-east-1", PauseImage: "pause", AwsvpcNetwork: "fake", AwsvpcSubnet: "10.9.0.0/24",
		PausePoolSize: -1, FargateRuntime: fargateRuntime, DefaultStopTimeout: 5 * time.Second,
		InstanceTags: map[string]string{"machine": "secret"},
		Logger:       slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, rep
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var fakeTaskN int

func fargateTask(launch string, mode ecs.NetworkMode) agentapi.TaskAssignment {
	fakeTaskN++
	app := ecs.ContainerDefinition{Name: "app", Image: "busybox", Memory: i32(64), StopTimeout: i32(30)}
	side := ecs.ContainerDefinition{Name: "side", Image: "busybox", Memory: i32(64), Essential: boolp(false),
		DependsOn: []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionSTART}}}
	return agentapi.TaskAssignment{
		TaskArn:       fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/shop/%032d", fakeTaskN),
		ClusterArn:    "arn:aws:ecs:us-east-1:123456789012:cluster/shop",
		DesiredStatus: "RUNNING", LaunchType: launch, Version: 1, CreatedAt: time.Now(),
		CapacityProviderName: "FARGATE_SPOT", PlatformVersion: "1.4.0",
		Definition: ecs.TaskDefinition{Family: "web", Revision: 1, NetworkMode: mode, Cpu: "256", Memory: "512",
			ContainerDefinitions: []ecs.ContainerDefinition{app, side}},
	}
}

func envOf(s runtime.ContainerSpec, name string) string {
	for _, kv := range s.Env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// A Spot interruption: desired STOPPED with the warning as the stop timeout.
// The task reports DEACTIVATING and STOPPING at once, its containers get
// that timeout instead of their own, and it is STOPPED once they exit.
func TestSpotInterruptionStopTimeout(t *testing.T) {
	f := newFakeRuntime()
	f.stopDelay = 400 * time.Millisecond // the app ignores SIGTERM
	e, rep := startFake(t, f, "runsc")
	a := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	rep.wait(t, a.TaskArn, "RUNNING")

	s := a
	s.DesiredStatus, s.StopCode, s.StoppedReason, s.Version = "STOPPED", "SpotInterruption", "Your Spot Task was interrupted.", 2
	s.StopTimeout = 300 * time.Millisecond
	asked := time.Now()
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{s}})
	_, deact := rep.wait(t, a.TaskArn, "DEACTIVATING")
	_, stopping := rep.wait(t, a.TaskArn, "STOPPING")
	sc, stoppedAt := rep.wait(t, a.TaskArn, "STOPPED")
	if d := stopping.Sub(asked); d > 200*time.Millisecond {
		t.Errorf("STOPPING reported %v after the interruption; want at once", d)
	}
	if deact.After(stopping) {
		t.Error("DEACTIVATING after STOPPING")
	}
	if d := stoppedAt.Sub(asked); d < 300*time.Millisecond {
		t.Errorf("STOPPED %v after the interruption: the containers were not given the warning", d)
	}
	for _, name := range []string{"app", "side"} {
		if got, ok := f.stopOf(name); !ok || got != 300*time.Millisecond {
			t.Errorf("%s stopped with timeout %v (%v), want the assignment's 300ms", name, got, ok)
		}
	}
	if sc.StopCode != "SpotInterruption" || sc.StoppedReason != "Your Spot Task was interrupted." {
		t.Errorf("stopped with %q %q", sc.StopCode, sc.StoppedReason)
	}
	if c := sc.Containers[0]; c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("app exit %v, want 137 (SIGKILL after the warning)", c.ExitCode)
	}

	// Without a stop timeout in the assignment, each container keeps its own.
	b := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	f.stopDelay = 0
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{b}})
	rep.wait(t, b.TaskArn, "RUNNING")
	f.mu.Lock()
	f.stops = map[string]time.Duration{}
	f.mu.Unlock()
	sb := b
	sb.DesiredStatus, sb.StopCode, sb.Version = "STOPPED", "UserInitiated", 2
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{sb}})
	rep.wait(t, b.TaskArn, "STOPPED")
	if got, _ := f.stopOf("app"); got != 30*time.Second {
		t.Errorf("app stop timeout %v, want its stopTimeout 30s", got)
	}
	if got, _ := f.stopOf("side"); got != 5*time.Second {
		t.Errorf("side stop timeout %v, want the engine default 5s", got)
	}
}

// A FARGATE task's app containers run under the Fargate runtime, joined to a
// pause container that runs with the default; metadata shows a Fargate task.
func TestFargateTaskRuntimeAndMetadata(t *testing.T) {
	f := newFakeRuntime()
	e, rep := startFake(t, f, "runsc")
	a := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	rep.wait(t, a.TaskArn, "RUNNING")

	app := f.specsOf("app")
	if len(app) != 1 || app[0].Runtime != "runsc" || !strings.HasPrefix(app[0].NetworkMode, "container:") {
		t.Fatalf("app created as %+v", app)
	}
	if side := f.specsOf("side"); len(side) != 1 || side[0].Runtime != "runsc" {
		t.Fatalf("side created as %+v", side)
	}
	var pause []runtime.ContainerSpec
	f.mu.Lock()
	for _, s := range f.specs {
		if s.Labels[labelKind] == kindPause {
			pause = append(pause, s)
		}
	}
	f.mu.Unlock()
	if len(pause) != 1 || pause[0].Runtime != "" {
		t.Fatalf("pause created as %+v", pause)
	}
	if got := envOf(app[0], "AWS_EXECUTION_ENV"); got != "AWS_ECS_FARGATE" {
		t.Errorf("AWS_EXECUTION_ENV %q", got)
	}
	if got := app[0].Labels[LabelCluster]; got != a.ClusterArn {
		t.Errorf("cluster label %q, want the cluster ARN", got)
	}

	tk, _, ok := e.Lookup(app[0].Labels[labelToken])
	if !ok {
		t.Fatal("no metadata for the app container")
	}
	if tk.LaunchType != "FARGATE" || tk.CapacityProviderName != "FARGATE_SPOT" || tk.ContainerInstanceTags != nil || tk.Cluster != "shop" {
		t.Errorf("task metadata %+v", tk)
	}
	b, _ := json.Marshal(tk)
	if strings.Contains(string(b), "container-instance") || strings.Contains(string(b), "ecsd.") {
		t.Errorf("metadata shows the machine: %s", b)
	}

	// An EC2 task on the same engine runs with the default runtime and shows
	// what it always did.
	c := fargateTask("EC2", ecs.NetworkModeBridge)
	c.Definition.Family = "ec2"
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{c}})
	rep.wait(t, c.TaskArn, "RUNNING")
	f.mu.Lock()
	for _, s := range f.specs {
		if s.Labels[LabelTaskARN] == c.TaskArn && (s.Runtime != "" || envOf(s, "AWS_EXECUTION_ENV") != "AWS_ECS_EC2") {
			t.Errorf("EC2 task container %+v", s)
		}
	}
	f.mu.Unlock()

	// A FARGATE task that is not awsvpc fails to start.
	d := fargateTask("FARGATE", ecs.NetworkModeBridge)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{d}})
	sc, _ := rep.wait(t, d.TaskArn, "STOPPED")
	if sc.StopCode != "TaskFailedToStart" || !strings.Contains(sc.StoppedReason, "awsvpc") {
		t.Errorf("non-awsvpc Fargate task stopped with %q %q", sc.StopCode, sc.StoppedReason)
	}
}

// A container that fails to start under the Fargate runtime is created
// again with the default one; the task runs.
func TestFargateRuntimeFallback(t *testing.T) {
	f := newFakeRuntime()
	f.failStart = func(s runtime.ContainerSpec) error {
		if s.Runtime == "runsc" && s.Labels[LabelContainer] == "app" {
			return errors.New("start: Error response from daemon: OCI runtime start failed: starting container: starting sandbox: runsc: boom: unknown")
		}
		return nil
	}
	e, rep := startFake(t, f, "runsc")
	a := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc, _ := rep.wait(t, a.TaskArn, "RUNNING")
	app := f.specsOf("app")
	if len(app) != 2 || app[0].Runtime != "runsc" || app[1].Runtime != "" {
		t.Fatalf("app created %d times: %+v", len(app), app)
	}
	if side := f.specsOf("side"); side[len(side)-1].Runtime != "" {
		t.Errorf("side last created with %q", side[len(side)-1].Runtime)
	}
	if len(f.removed) == 0 {
		t.Error("the container that failed under runsc was not removed")
	}
	for _, c := range sc.Containers {
		if c.LastStatus != "RUNNING" {
			t.Errorf("container %+v", c)
		}
	}
	// Only that task fell back: the next one tries the runtime again.
	b := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{b}})
	rep.wait(t, b.TaskArn, "RUNNING")
	if app := f.specsOf("app"); app[2].Runtime != "runsc" {
		t.Errorf("next task's app created with %q", app[2].Runtime)
	}

	// A failure that is not the runtime's is not retried.
	f.failStart = func(s runtime.ContainerSpec) error {
		return errors.New("start: Error response from daemon: driver failed programming external connectivity")
	}
	c := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{c}})
	sc, _ = rep.wait(t, c.TaskArn, "STOPPED")
	if sc.StopCode != "TaskFailedToStart" {
		t.Errorf("stopped with %q %q", sc.StopCode, sc.StoppedReason)
	}
}

// A daemon without the runtime turns it off for the engine.
func TestFargateRuntimeMissing(t *testing.T) {
	f := newFakeRuntime()
	f.failCreate = func(s runtime.ContainerSpec) error {
		if s.Runtime == "runsc" {
			return errors.New("create: Error response from daemon: Unknown runtime specified runsc")
		}
		return nil
	}
	e, rep := startFake(t, f, "runsc")
	a := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	rep.wait(t, a.TaskArn, "RUNNING")
	b := fargateTask("FARGATE", ecs.NetworkModeAwsvpc)
	e.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{b}})
	rep.wait(t, b.TaskArn, "RUNNING")
	var tries []string
	for _, s := range f.specsOf("app") {
		tries = append(tries, s.Labels[LabelTaskARN][len(s.Labels[LabelTaskARN])-2:]+":"+s.Runtime)
	}
	// The first task tried runsc once; the second never did.
	if app := f.specsOf("app"); len(app) != 3 || app[0].Runtime != "runsc" || app[1].Runtime != "" || app[2].Runtime != "" {
		t.Fatalf("app creates %v", tries)
	}
	if e.fargateRuntime() != "" {
		t.Error("runtime still on")
	}
}

// Stopping the engine removes the idle pause containers of its warm pool
// (task containers stay, for the next engine to re-attach).
func TestShutdownRemovesIdlePauseContainers(t *testing.T) {
	f := newFakeRuntime()
	e, err := New(Config{Runtime: f, Reporter: &reports{}, InstanceArn: "arn:aws:ecs:us-east-1:123456789012:container-instance/c/i1",
		PauseImage: "pause", AwsvpcNetwork: "fake", AwsvpcSubnet: "10.9.0.0/24", PausePoolSize: 2,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.ctrs)
		f.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool has %d containers, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ctrs) != 0 || len(f.removed) != 2 {
		t.Fatalf("after shutdown: %d containers left, %d removed", len(f.ctrs), len(f.removed))
	}
}
