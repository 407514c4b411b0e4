package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
)

// VolumeRemover is implemented by runtimes that can delete named volumes; the
// engine removes a task's task-scoped volumes with it when the task is
// cleaned up.
type VolumeRemover interface {
	RemoveVolume(ctx context.Context, name string) error
}

// stopGrace is added to a container's stop timeout for the runtime to reap it.
const stopGrace = 30 * time.Second

// stopContainers stops the task's running containers in reverse dependency
// order: each wave is the containers nothing still running depends on; a
// wave's containers stop in parallel, each with its own stopTimeout (SIGTERM,
// then SIGKILL).
func (t *task) stopContainers(ctx context.Context) {
	for ctx.Err() == nil {
		wave := stopWave(t.containers, t.byName)
		if len(wave) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, c := range wave {
			c.stopped = true
			wg.Add(1)
			go func(id string, after time.Duration) {
				defer wg.Done()
				t.stopOne(ctx, id, after)
			}(c.id, t.stopTimeoutOf(c))
		}
		wg.Wait()
		for _, c := range wave {
			t.refresh(ctx, c)
			if c.running {
				c.running = false // could not be stopped; do not wait on it forever
			}
		}
	}
}

// stopOne runs in its own goroutine: runtime calls only, no task state.
func (t *task) stopOne(ctx context.Context, id string, after time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, after+stopGrace)
	defer cancel()
	err := t.e.rt.Stop(sctx, id, after)
	if err == nil || errors.Is(err, runtime.ErrNotFound) || ctx.Err() != nil {
		return
	}
	t.log.Warn("stop failed; killing", "container", id, "err", err)
	if err := t.e.rt.Kill(ctx, id, "SIGKILL"); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		t.log.Warn("kill failed", "container", id, "err", err)
	}
}

// deprovision releases the task's network: the pause container goes, and
// with it the task's address.
func (t *task) deprovision(ctx context.Context) {
	if p := t.pause; p != nil && p.id != "" && !p.removed {
		p.stopped = true
		if err := t.e.rt.Remove(ctx, p.id, true); err != nil {
			t.log.Warn("removing the pause container failed", "container", p.id, "err", err)
		} else {
			p.removed = true
		}
		p.running = false
		if !p.exited {
			p.exited = true
			p.finishedAt = t.now()
		}
	}
	if t.att != nil {
		t.att.status = "DELETED"
	}
}

// cleanup removes a stopped task's containers and task-scoped volumes.
func (t *task) cleanup(ctx context.Context) {
	for _, c := range t.allContainers() {
		if c.id == "" || c.removed {
			continue
		}
		if err := t.e.rt.Remove(ctx, c.id, true); err != nil {
			t.log.Warn("removing container failed", "container", c.id, "err", err)
			continue
		}
		c.removed = true
	}
	vr, ok := t.e.rt.(VolumeRemover)
	if !ok || !t.assigned {
		return
	}
	for _, v := range t.asg.Definition.Volumes {
		if !isTaskScoped(v) {
			continue
		}
		if err := vr.RemoveVolume(ctx, taskVolumeName(t.id, v.Name)); err != nil {
			t.log.Warn("removing task volume failed", "volume", v.Name, "err", err)
		}
	}
}
