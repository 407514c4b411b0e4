package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/internal/testimage"
)

// labelRun marks every container this test binary creates, so TestMain can
// remove leftovers by id even after a panic in a test.
const labelRun = "ecsd.test.run"

var (
	runID = func() string {
		b := make([]byte, 4)
		rand.Read(b)
		return hex.EncodeToString(b)
	}()

	setupOnce sync.Once
	sharedRT  *docker.Runtime
	setupErr  error
	setupSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRT != nil {
		cleanupRun(sharedRT)
	}
	os.Exit(code)
}

// cleanupRun force-removes whatever this run left behind, by id.
func cleanupRun(rt *docker.Runtime) {
	ctx := context.Background()
	list, err := rt.List(ctx, map[string]string{labelRun: runID}, true)
	if err != nil {
		return
	}
	for _, c := range list {
		fmt.Fprintf(os.Stderr, "removing leftover container %s (%s)\n", c.ID[:12], c.Name)
		_ = rt.Remove(ctx, c.ID, true)
	}
}

// rt returns the shared runtime with the test images built, or skips when no
// dockerd is reachable (fails instead with ECSD_E2E_REQUIRED=1).
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
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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

// rawClient is a plain Docker client, for checking what the runtime sent.
func rawClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawInspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	in, err := rawClient(t).ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// testLabels are the labels of a test's containers: the run label plus one
// naming the test, so a test can select exactly its own.
func testLabels(t *testing.T) map[string]string {
	return map[string]string{labelRun: runID, "ecsd.test.name": strings.ReplaceAll(t.Name(), "/", "_")}
}

// create creates a container from spec (busybox by default, with the test's
// labels and a unique name) and removes it when the test ends.
func create(t *testing.T, r runtime.Runtime, spec runtime.ContainerSpec) string {
	t.Helper()
	if spec.Image == "" {
		spec.Image = testimage.Busybox
	}
	labels := testLabels(t)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	spec.Labels = labels
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("ecsd-test-%s-%s", runID, randHex(4))
	}
	id, err := r.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), id, true) })
	return id
}

func run(t *testing.T, r runtime.Runtime, spec runtime.ContainerSpec) string {
	t.Helper()
	id := create(t, r, spec)
	if err := r.Start(context.Background(), id); err != nil {
		t.Fatalf("start: %v", err)
	}
	return id
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls Inspect until cond holds.
func waitFor(t *testing.T, r runtime.Runtime, id string, timeout time.Duration, what string, cond func(runtime.ContainerState) bool) runtime.ContainerState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := r.Inspect(context.Background(), id)
		if err != nil {
			t.Fatalf("inspect: %v", err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: status=%s health=%s exit=%d", what, st.Status, st.Health, st.ExitCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitExited(t *testing.T, r runtime.Runtime, id string) runtime.ContainerState {
	t.Helper()
	return waitFor(t, r, id, 30*time.Second, "exit", func(st runtime.ContainerState) bool {
		return st.Status == runtime.StatusExited || st.Status == runtime.StatusDead
	})
}

// runToExit runs a busybox shell script and returns its exit code.
func runToExit(t *testing.T, r runtime.Runtime, spec runtime.ContainerSpec, script string) int {
	t.Helper()
	spec.Command = []string{"sh", "-c", script}
	id := run(t, r, spec)
	return waitExited(t, r, id).ExitCode
}
