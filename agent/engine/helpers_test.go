package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/agent/tmds"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testimage"
)

var (
	runID = randHex(4)

	setupOnce sync.Once
	sharedRT  *docker.Runtime
	setupErr  error
	setupSkip string

	// The awsvpc network of this test run (its own name and subnet, so runs
	// and other packages' tests never share one).
	netName   string
	netSubnet string

	instMu    sync.Mutex
	instances []string // every instance ARN an engine of this run used
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRT != nil {
		ctx := context.Background()
		instMu.Lock()
		for _, arn := range instances {
			removeInstanceContainers(ctx, sharedRT, arn)
		}
		instMu.Unlock()
		if netName != "" {
			if err := sharedRT.RemoveNetwork(ctx, netName); err != nil {
				fmt.Fprintf(os.Stderr, "removing network %s: %v\n", netName, err)
			}
		}
	}
	os.Exit(code)
}

func removeInstanceContainers(ctx context.Context, r runtime.Runtime, arn string) {
	list, err := r.List(ctx, map[string]string{engine.LabelInstance: arn}, true)
	if err != nil {
		return
	}
	for _, c := range list {
		_ = r.Remove(ctx, c.ID, true)
	}
}

// rt is the shared runtime with the test images built and the test network
// created; it skips without a Docker socket (fails with ECSD_E2E_REQUIRED=1).
func rt(t *testing.T) *docker.Runtime {
	t.Helper()
	setupOnce.Do(func() {
		if os.Getenv("DOCKER_HOST") == "" {
			if _, err := os.Stat("/var/run/docker.sock"); err != nil {
				setupSkip = "no docker socket at /var/run/docker.sock"
				return
			}
		}
		r, err := docker.New(docker.Config{})
		if err != nil {
			setupErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			setupSkip = "docker not answering: " + err.Error()
			return
		}
		sharedRT = r
		if _, err := testimage.Ensure(ctx, r); err != nil {
			setupErr = err
			return
		}
		if _, err := testimage.EnsurePause(ctx, r); err != nil {
			setupErr = err
			return
		}
		name := "ecsd-awsvpc-test-" + runID
		for i := 0; i < 8; i++ {
			n, _ := rand.Int(rand.Reader, big.NewInt(250))
			subnet := fmt.Sprintf("10.214.%d.0/24", n.Int64()+1)
			if _, err = r.EnsureNetwork(ctx, name, subnet); err == nil {
				netName, netSubnet = name, subnet
				break
			}
		}
		if err != nil {
			setupErr = fmt.Errorf("creating the test awsvpc network: %w", err)
		}
	})
	if setupSkip != "" {
		if os.Getenv("ECSD_E2E_REQUIRED") == "1" {
			t.Fatal(setupSkip)
		}
		t.Skip(setupSkip)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return sharedRT
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recorder is a Reporter that keeps every state change.
type recorder struct {
	mu      sync.Mutex
	changes []agentapi.StateChange
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) Report(sc agentapi.StateChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, sc)
	close(r.notify)
	r.notify = make(chan struct{})
}

func (r *recorder) of(arn string) []agentapi.StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []agentapi.StateChange
	for _, sc := range r.changes {
		if sc.TaskArn == arn {
			out = append(out, sc)
		}
	}
	return out
}

// wait returns the first change of task arn that satisfies cond.
func (r *recorder) wait(t *testing.T, arn string, timeout time.Duration, what string, cond func(agentapi.StateChange) bool) agentapi.StateChange {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ch := r.notify
		for _, sc := range r.changes {
			if sc.TaskArn == arn && cond(sc) {
				r.mu.Unlock()
				return sc
			}
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; reported: %s", what, r.summary(arn))
		}
	}
}

func (r *recorder) waitStatus(t *testing.T, arn, status string, timeout time.Duration) agentapi.StateChange {
	t.Helper()
	return r.wait(t, arn, timeout, "status "+status, func(sc agentapi.StateChange) bool { return sc.Status == status })
}

// statuses is the sequence of distinct task statuses reported.
func (r *recorder) statuses(arn string) []string {
	var out []string
	for _, sc := range r.of(arn) {
		if len(out) == 0 || out[len(out)-1] != sc.Status {
			out = append(out, sc.Status)
		}
	}
	return out
}

func (r *recorder) summary(arn string) string {
	var b strings.Builder
	for _, sc := range r.of(arn) {
		fmt.Fprintf(&b, "\n  %s code=%q reason=%q health=%s", sc.Status, sc.StopCode, sc.StoppedReason, sc.HealthStatus)
		for _, c := range sc.Containers {
			fmt.Fprintf(&b, " [%s %s exit=%v reason=%q health=%s]", c.Name, c.LastStatus, deref(c.ExitCode), c.Reason, c.HealthStatus)
		}
	}
	return b.String()
}

func deref(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

// harness is one engine running against the shared runtime.
type harness struct {
	eng      *engine.Engine
	rec      *recorder
	rt       runtime.Runtime
	instance string
	tmds     *tmds.Server
	cancel   context.CancelFunc
	done     chan error
}

type engineConfig = engine.Config

type option func(*engine.Config)

// start runs an engine for instance (a new one when ""); it is stopped, and
// every container of the instance removed, when the test ends.
func start(t *testing.T, instance string, opts ...option) *harness {
	t.Helper()
	r := rt(t)
	if instance == "" {
		instance = "arn:aws:ecs:us-east-1:123456789012:container-instance/test/" + runID + "-" + randHex(6)
		instMu.Lock()
		instances = append(instances, instance)
		instMu.Unlock()
		t.Cleanup(func() { removeInstanceContainers(context.Background(), r, instance) })
	}
	h := &harness{rec: newRecorder(), rt: r, instance: instance, tmds: tmds.New(tmds.Config{Port: -1})}
	cfg := engine.Config{
		Runtime:            r,
		Reporter:           h.rec,
		InstanceArn:        instance,
		ClusterArn:         "arn:aws:ecs:us-east-1:123456789012:cluster/test",
		Region:             "us-east-1",
		AvailabilityZone:   "us-east-1a",
		TMDS:               h.tmds,
		PauseImage:         testimage.Pause,
		AwsvpcNetwork:      netName,
		AwsvpcSubnet:       netSubnet,
		PausePoolSize:      -1,
		DefaultStopTimeout: 3 * time.Second,
		Logger:             slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- eng.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends the engine (its containers keep running).
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.cancel = nil
}

// testWriter sends engine logs to the test log (shown with -v or on failure).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func taskARN() string {
	return "arn:aws:ecs:us-east-1:123456789012:task/test/" + randHex(16)
}

func assignment(family string, mode ecs.NetworkMode, cds ...ecs.ContainerDefinition) agentapi.TaskAssignment {
	return agentapi.TaskAssignment{
		TaskArn:       taskARN(),
		ClusterArn:    "arn:aws:ecs:us-east-1:123456789012:cluster/test",
		DesiredStatus: "RUNNING",
		Definition: ecs.TaskDefinition{
			Family:               family,
			Revision:             3,
			NetworkMode:          mode,
			ContainerDefinitions: cds,
			TaskDefinitionArn:    "arn:aws:ecs:us-east-1:123456789012:task-definition/" + family + ":3",
		},
		LaunchType: "EC2",
		Tags:       []ecs.Tag{{Key: "team", Value: "ecsd"}},
		Version:    1,
		CreatedAt:  time.Now(),
	}
}

func stopped(a agentapi.TaskAssignment) agentapi.TaskAssignment {
	a.DesiredStatus = "STOPPED"
	a.StopCode = "UserInitiated"
	a.StoppedReason = "stopped by the test"
	a.Version++
	return a
}

func busybox(name string, command ...string) ecs.ContainerDefinition {
	return ecs.ContainerDefinition{Name: name, Image: testimage.Busybox, Command: command, Memory: i32(64)}
}

func i32(n int32) *int32 { return &n }
func boolp(b bool) *bool { return &b }

func container(sc agentapi.StateChange, name string) agentapi.ContainerState {
	for _, c := range sc.Containers {
		if c.Name == name {
			return c
		}
	}
	return agentapi.ContainerState{}
}

// httpGet polls url until it answers 200 and returns the body.
func httpGet(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := cl.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outDir is a host directory containers can write into.
func outDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("container never wrote %s", path)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// removeVolume deletes a named volume with the docker CLI (the runtime has no
// volume call yet).
func removeVolume(name string) {
	_ = exec.Command("docker", "volume", "rm", "-f", name).Run()
}

// taskContainers lists the containers of a task on the runtime.
func taskContainers(t *testing.T, r runtime.Runtime, arn string) []runtime.ContainerState {
	t.Helper()
	list, err := r.List(context.Background(), map[string]string{engine.LabelTaskARN: arn}, true)
	if err != nil {
		t.Fatal(err)
	}
	return list
}
