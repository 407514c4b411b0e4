// Package planner commits placements. It is the only writer of task placements and
// of container instance resource accounting: every plan is written in one etcd
// transaction that compare-and-swaps each touched instance on the revision the
// plan was computed from, so two concurrent plans can never over-commit an
// instance. On a conflict the caller's plan function runs again on a fresh
// snapshot, a bounded number of times.
//
//	snapshot@rev ──plan fn──▶ tasks + charges ──Txn(CAS instances@rev)──▶ ok
//	      ▲                                             │ conflict
//	      └──────────── wait for cache, retry ◀─────────┘
package planner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/store"
)

// MaxAttempts bounds how often a plan is recomputed after conflicts.
const MaxAttempts = 8

// ErrContended is returned when every attempt conflicted.
var ErrContended = errors.New("planner: placement kept conflicting with concurrent changes")

// Planner commits plans against one store and its cache.
type Planner struct {
	st    store.Store
	cache *cache.Cache
}

// New returns a planner.
func New(st store.Store, c *cache.Cache) *Planner { return &Planner{st: st, cache: c} }

// Plan is what a plan function produces from one snapshot: new tasks (with
// InstanceID and Reserved set when placed) and any other operations that must
// commit atomically with them (e.g. a check on the cluster's revision).
type Plan struct {
	Tasks []*resource.Task
	// Placed are existing tasks that waited for capacity and now have an
	// instance: each is charged and compare-and-swapped on its snapshot revision.
	Placed []*resource.Task
	Ops    []store.Op
}

// PlanFunc computes a plan from a snapshot. It must be pure (it may run several
// times) and must not mutate records from the snapshot.
type PlanFunc func(snap *cache.Snapshot) (Plan, error)

// Commit runs fn on a fresh snapshot and commits its plan, charging each task's
// Reserved usage to its instance. It returns the committed plan and revision.
func (p *Planner) Commit(ctx context.Context, fn PlanFunc) (Plan, int64, error) {
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		snap := p.cache.Snapshot()
		plan, err := fn(snap)
		if err != nil {
			return Plan{}, 0, err
		}
		ops, err := chargeOps(snap, append(slices.Clip(plan.Tasks), plan.Placed...))
		if err != nil {
			return Plan{}, 0, err
		}
		for _, t := range plan.Tasks {
			ops = append(ops, store.Create(t.Scope.TaskKey(t.Cluster, t.ID), resource.Encode(t)))
		}
		for _, t := range plan.Placed {
			key := t.Scope.TaskKey(t.Cluster, t.ID)
			e, ok := snap.Get(key)
			if !ok {
				return Plan{}, 0, fmt.Errorf("planner: task %s is not in the snapshot", key)
			}
			ops = append(ops, store.Update(key, resource.Encode(t), e.Rev))
		}
		ops = append(ops, plan.Ops...)
		rev, err := p.st.Txn(ctx, ops...)
		if errors.Is(err, store.ErrConflict) {
			// Someone changed an instance (or the cluster) since the snapshot:
			// wait until the cache has seen at least as much, then recompute.
			if werr := p.catchUp(ctx); werr != nil {
				return Plan{}, 0, werr
			}
			continue
		}
		if err != nil {
			return Plan{}, 0, err
		}
		if err := p.wait(ctx, rev); err != nil {
			return Plan{}, 0, err
		}
		return plan, rev, nil
	}
	return Plan{}, 0, ErrContended
}

// Update commits changes to existing tasks (status changes, stop requests) and
// gives back the resources of every task that becomes STOPPED, atomically. fn
// returns the tasks' next versions; each is compare-and-swapped on the revision
// it had in the snapshot.
func (p *Planner) Update(ctx context.Context, fn func(snap *cache.Snapshot) ([]*resource.Task, error)) ([]*resource.Task, int64, error) {
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		snap := p.cache.Snapshot()
		tasks, err := fn(snap)
		if err != nil {
			return nil, 0, err
		}
		if len(tasks) == 0 {
			return nil, snap.Rev(), nil
		}
		ops, err := releaseOps(snap, tasks)
		if err != nil {
			return nil, 0, err
		}
		for _, t := range tasks {
			key := t.Scope.TaskKey(t.Cluster, t.ID)
			e, ok := snap.Get(key)
			if !ok {
				return nil, 0, fmt.Errorf("planner: task %s is not in the snapshot", key)
			}
			ops = append(ops, store.Update(key, resource.Encode(t), e.Rev))
		}
		rev, err := p.st.Txn(ctx, ops...)
		if errors.Is(err, store.ErrConflict) {
			if werr := p.catchUp(ctx); werr != nil {
				return nil, 0, werr
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if err := p.wait(ctx, rev); err != nil {
			return nil, 0, err
		}
		return tasks, rev, nil
	}
	return nil, 0, ErrContended
}

func (p *Planner) wait(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.cache.WaitFor(wctx, rev)
}

// catchUp waits briefly for the cache to move past its current revision, so a
// retry sees the change that caused the conflict.
func (p *Planner) catchUp(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := p.cache.WaitFor(wctx, p.cache.Rev()+1)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	_ = err // a timeout just means nothing new arrived yet; retry anyway
	return nil
}

// chargeOps adds each new task's Reserved usage to its instance, one CAS update
// per touched instance.
func chargeOps(snap *cache.Snapshot, tasks []*resource.Task) ([]store.Op, error) {
	return adjust(snap, tasks, func(t *resource.Task) (resource.Usage, bool) {
		return t.Reserved, t.InstanceID != ""
	}, +1)
}

// releaseOps gives back the Reserved usage of tasks that have just become STOPPED
// (and marks them Released so it happens once).
func releaseOps(snap *cache.Snapshot, tasks []*resource.Task) ([]store.Op, error) {
	return adjust(snap, tasks, func(t *resource.Task) (resource.Usage, bool) {
		if t.LastStatus != "STOPPED" || t.Released || t.InstanceID == "" {
			return resource.Usage{}, false
		}
		t.Released = true
		return t.Reserved, true
	}, -1)
}

func adjust(snap *cache.Snapshot, tasks []*resource.Task, pick func(*resource.Task) (resource.Usage, bool), sign int64) ([]store.Op, error) {
	type touched struct {
		rec *resource.ContainerInstance
		rev int64
	}
	byKey := map[string]*touched{}
	var order []string
	for _, t := range tasks {
		u, ok := pick(t)
		if !ok {
			continue
		}
		key := t.InstanceKey()
		tc, seen := byKey[key]
		if !seen {
			e, ok := snap.Get(key)
			if !ok {
				if sign < 0 {
					// The instance is gone (deregistered and collected): nothing to give back.
					continue
				}
				return nil, fmt.Errorf("planner: container instance %s is not in the snapshot", key)
			}
			ci, ok := e.Obj.(*resource.ContainerInstance)
			if !ok {
				return nil, fmt.Errorf("planner: %s is not a container instance", key)
			}
			cp := *ci
			cp.Used = cloneUsage(ci.Used)
			tc = &touched{rec: &cp, rev: e.Rev}
			byKey[key] = tc
			order = append(order, key)
		}
		apply(&tc.rec.Used, u, sign)
	}
	ops := make([]store.Op, 0, len(order))
	for _, key := range order {
		tc := byKey[key]
		ops = append(ops, store.Update(key, resource.Encode(tc.rec), tc.rev))
	}
	return ops, nil
}

func apply(used *resource.Usage, u resource.Usage, sign int64) {
	used.CPU = max(0, used.CPU+sign*u.CPU)
	used.Memory = max(0, used.Memory+sign*u.Memory)
	if sign > 0 {
		used.TCPPorts = append(used.TCPPorts, u.TCPPorts...)
		used.UDPPorts = append(used.UDPPorts, u.UDPPorts...)
	} else {
		used.TCPPorts = removePorts(used.TCPPorts, u.TCPPorts)
		used.UDPPorts = removePorts(used.UDPPorts, u.UDPPorts)
	}
}

// removePorts removes one occurrence of each port in drop.
func removePorts(ports, drop []int32) []int32 {
	out := slices.Clone(ports)
	for _, d := range drop {
		if i := slices.Index(out, d); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	return out
}

func cloneUsage(u resource.Usage) resource.Usage {
	u.TCPPorts = slices.Clone(u.TCPPorts)
	u.UDPPorts = slices.Clone(u.UDPPorts)
	return u
}

// InstanceView is the scheduler's view of a container instance: registered
// resources less what tasks hold, and the host ports in use (reserved ones
// included).
func InstanceView(ci *resource.ContainerInstance, connected bool) scheduler.Instance {
	in := scheduler.Instance{
		ID:             ci.ID,
		ARN:            ci.ContainerInstanceArn,
		Status:         ci.Status,
		AgentConnected: connected,
		TCPPorts:       map[int32]bool{},
		UDPPorts:       map[int32]bool{},
		Attributes:     map[string]string{},
	}
	for _, r := range ci.RegisteredResources {
		switch r.Name {
		case "CPU":
			in.CPU = int64(r.IntegerValue)
		case "MEMORY":
			in.Memory = int64(r.IntegerValue)
		case "PORTS":
			for _, p := range r.StringSetValue {
				in.TCPPorts[parsePort(p)] = true
			}
		case "PORTS_UDP":
			for _, p := range r.StringSetValue {
				in.UDPPorts[parsePort(p)] = true
			}
		}
	}
	in.CPU -= ci.Used.CPU
	in.Memory -= ci.Used.Memory
	for _, p := range ci.Used.TCPPorts {
		in.TCPPorts[p] = true
	}
	for _, p := range ci.Used.UDPPorts {
		in.UDPPorts[p] = true
	}
	for _, a := range ci.Attributes {
		in.Attributes[a.Name] = a.Value
	}
	return in
}

func parsePort(s string) int32 {
	var n int32
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int32(c-'0')
	}
	return n
}
