package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// cutEvents is a runtime whose event streams can be broken on demand, and
// which refuses to reconnect until allowed.
type cutEvents struct {
	runtime.Runtime
	mu      sync.Mutex
	cut     chan struct{}
	allow   chan struct{}
	streams int
}

func (c *cutEvents) Events(ctx context.Context, labels map[string]string, since time.Time) (<-chan runtime.Event, <-chan error) {
	c.mu.Lock()
	c.streams++
	n := c.streams
	c.mu.Unlock()
	if n > 1 {
		<-c.allow
		return c.Runtime.Events(ctx, labels, since)
	}
	sctx, cancel := context.WithCancel(ctx)
	in, inErr := c.Runtime.Events(sctx, labels, since)
	out, errc := make(chan runtime.Event), make(chan error, 1)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					errc <- <-inErr
					return
				}
				select {
				case out <- ev:
				case <-ctx.Done():
				}
			case <-c.cut:
				errc <- errors.New("connection reset by peer")
				return
			}
		}
	}()
	return out, errc
}

// The engine reconnects to runtime events after losing them and notices
// what happened meanwhile.
func TestEventsReconnect(t *testing.T) {
	t.Parallel()
	ce := &cutEvents{cut: make(chan struct{}), allow: make(chan struct{})}
	var allowOnce sync.Once
	allow := func() { allowOnce.Do(func() { close(ce.allow) }) }
	h := start(t, "", func(c *engine.Config) { ce.Runtime = c.Runtime; c.Runtime = ce })
	t.Cleanup(allow) // cleanups run last-first: this unblocks a reconnect before the engine is stopped
	a := assignment("reconnect", ecs.NetworkModeBridge, busybox("main", "sleep", "300"))
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)

	close(ce.cut)
	time.Sleep(200 * time.Millisecond)
	if err := h.rt.Kill(context.Background(), container(sc, "main").RuntimeID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	allow()
	sc = h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if sc.StopCode != "EssentialContainerExited" || *container(sc, "main").ExitCode != 137 {
		t.Errorf("after reconnect: %s", h.rec.summary(a.TaskArn))
	}
}

// A none-mode task has no network and no bindings.
func TestNoneMode(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	app := busybox("app", "sleep", "300")
	app.PortMappings = []ecs.PortMapping{{ContainerPort: i32(80)}}
	a := assignment("none", ecs.NetworkModeNone, app)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	if c := container(sc, "app"); len(c.NetworkBindings) != 0 || len(c.NetworkInterfaces) != 0 {
		t.Errorf("container: %+v", c)
	}
	st, err := h.rt.Inspect(context.Background(), container(sc, "app").RuntimeID)
	if err != nil || st.NetworkMode != "none" {
		t.Errorf("network mode %q %v", st.NetworkMode, err)
	}
}
