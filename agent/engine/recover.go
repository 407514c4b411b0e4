package engine

import (
	"context"
	"errors"
	"strings"

	"github.com/ecsd/ecsd/agent/runtime"
)

// recover re-attaches to the containers a previous engine of this instance
// left, using only their labels and an inspection of each: one task per task
// ARN, its containers matched by name once the server assigns it again. A
// re-attached task does nothing until the server says what it wants; the
// first full list stops and removes those it does not have.
func (e *Engine) recover(ctx context.Context) error {
	list, err := e.rt.List(ctx, map[string]string{LabelManaged: "true", LabelInstance: e.cfg.InstanceArn}, true)
	if err != nil {
		return err
	}
	byTask := map[string][]runtime.ContainerState{}
	pauses := map[string]runtime.ContainerState{}
	pauseOwner := map[string]string{} // pause id → task ARN
	for _, c := range list {
		arn := c.Labels[LabelTaskARN]
		if c.Labels[labelKind] == kindPause {
			pauses[c.ID] = c
			if arn != "" {
				pauseOwner[c.ID] = arn
			}
			continue
		}
		if arn == "" {
			continue
		}
		byTask[arn] = append(byTask[arn], c)
		if pid := c.Labels[labelPauseID]; pid != "" {
			pauseOwner[pid] = arn
		}
	}

	tasks := map[string]*task{}
	get := func(arn string) *task {
		t := tasks[arn]
		if t == nil {
			t = newTask(e, arn)
			t.recovered = true
			tasks[arn] = t
		}
		return t
	}
	for arn, cs := range byTask {
		t := get(arn)
		for _, s := range cs {
			st, err := e.rt.Inspect(ctx, s.ID)
			if errors.Is(err, runtime.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			c := recoveredContainer(st, e)
			t.containers = append(t.containers, c)
			t.byName[c.name] = c
			t.networkMode = networkModeOf(st.NetworkMode)
			if id := st.Labels[labelAttachment]; id != "" && t.att == nil {
				t.att = &attachment{id: id}
			}
		}
	}
	for pid, arn := range pauseOwner {
		s, ok := pauses[pid]
		if !ok {
			continue
		}
		delete(pauses, pid)
		st, err := e.rt.Inspect(ctx, s.ID)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		t := get(arn)
		t.pause = pauseContainer(st, e.awsvpc.name)
		t.networkMode = "awsvpc"
		attID := newUUID()
		if t.att != nil {
			attID = t.att.id
		}
		t.att = e.newAttachment(attID, t.pause)
		if !t.pause.running {
			t.att.status = "DELETED"
		}
	}
	// Pause containers no task owns: back into the pool, or gone.
	for id, s := range pauses {
		if e.pool != nil && s.Labels[labelPool] == "true" && s.Running {
			if n, ok := s.Networks[e.awsvpc.name]; ok && n.IPv4 != "" {
				p := pauseContainer(s, e.awsvpc.name)
				if e.pool.add(p) {
					continue
				}
			}
		}
		if err := e.rt.Remove(ctx, id, true); err != nil {
			e.log.Warn("removing an unowned pause container failed", "container", id, "err", err)
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	for arn, t := range tasks {
		started := false
		for _, c := range t.containers {
			started = started || c.started
		}
		switch {
		case started:
			t.known = StatusRunning
		case t.pause != nil:
			t.known = StatusPending
		}
		t.pulled = true
		for _, c := range t.allContainers() {
			if c.id != "" {
				e.byID[c.id] = t
			}
			if c.token != "" {
				e.tokens[c.token] = t
			}
		}
		e.tasks[arn] = t
		t.log.Info("re-attached to task", "containers", len(t.containers), "status", t.known)
		e.startTask(t)
	}
	return nil
}

// recoveredContainer rebuilds a container's record from its labels and state.
func recoveredContainer(st runtime.ContainerState, e *Engine) *container {
	c := &container{
		name:       st.Labels[LabelContainer],
		token:      st.Labels[labelToken],
		dockerName: st.Name,
		essential:  st.Labels[labelEssential] != "false",
		stopAfter:  parseSecondsLabel(st.Labels[labelStopTimeout], e.cfg.DefaultStopTimeout),
		health:     HealthUnknown,
	}
	if c.name == "" {
		c.name = st.Name
	}
	c.observe(st)
	c.hasHealth = st.Health != ""
	return c
}

func networkModeOf(mode string) string {
	switch {
	case strings.HasPrefix(mode, "container:"):
		return "awsvpc"
	case mode == "host", mode == "none":
		return mode
	default:
		return "bridge"
	}
}
