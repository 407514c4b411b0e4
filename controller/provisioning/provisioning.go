// Package provisioning places tasks that wait for capacity. RunTask and the
// service scheduler create a task launched through a capacity provider (or
// onto the Fargate pool) even when nothing can take it yet: it waits in
// PROVISIONING without an instance while managed scaling adds some. This
// controller places waiting tasks as room appears, stops those that waited
// too long, and makes room on the Fargate pool for on-demand tasks by
// interrupting FARGATE_SPOT tasks.
//
//	cache change (task waits, instance joins, usage drops) or tick
//	  └─▶ pass: group waiting tasks ─▶ planner.Commit per group (Placed)
//	                                └▶ still waiting: timeout? spot to interrupt?
//
// Every write goes through the planner, which compare-and-swaps the touched
// instances, so a pass racing RunTask can never over-commit an instance.
package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// errNothing ends a plan with nothing to write.
var errNothing = errors.New("nothing to place")

// Defaults.
const (
	DefaultInterval    = 2 * time.Second
	DefaultWaitTimeout = 30 * time.Minute
	DefaultSpotWarning = 2 * time.Minute
)

// Config configures the controller. Cache and Planner are required.
type Config struct {
	Cache   *cache.Cache
	Planner *planner.Planner
	// AgentTimeout: an agent unheard of for longer counts as disconnected.
	AgentTimeout time.Duration
	// WaitTimeout is how long a task may wait for capacity before it is
	// stopped (TaskFailedToStart).
	WaitTimeout time.Duration
	// SpotWarning is the stop timeout of an interrupted FARGATE_SPOT task.
	SpotWarning time.Duration
	Interval    time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
}

// Controller places waiting tasks.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	waiting map[string]struct{} // keys of tasks that wait, kept from cache changes
}

// New returns a controller subscribed to the cache.
func New(cfg Config) (*Controller, error) {
	if cfg.Cache == nil || cfg.Planner == nil {
		return nil, errors.New("provisioning: Cache and Planner are required")
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = 30 * time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.SpotWarning <= 0 {
		cfg.SpotWarning = DefaultSpotWarning
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("controller", "provisioning"), wake: make(chan struct{}, 1), waiting: map[string]struct{}{}}
	cfg.Cache.Subscribe(c.onChange)
	return c, nil
}

func (c *Controller) Name() string { return "provisioning" }

// onChange runs on the cache goroutine: track waiting tasks and wake the loop
// when one appears or capacity may have (an instance changed or a task
// stopped).
func (c *Controller) onChange(ch cache.Change) {
	_, kind, _, ok := resource.SplitKey(ch.Key)
	if !ok {
		return
	}
	switch kind {
	case resource.KindTask:
		var t *resource.Task
		if ch.New != nil {
			t, _ = ch.New.Obj.(*resource.Task)
		}
		c.mu.Lock()
		if t != nil && t.Waiting() {
			c.waiting[ch.Key] = struct{}{}
		} else {
			delete(c.waiting, ch.Key)
		}
		n := len(c.waiting)
		c.mu.Unlock()
		if n > 0 {
			c.signal()
		}
	case resource.KindContainerInstance:
		c.mu.Lock()
		n := len(c.waiting)
		c.mu.Unlock()
		if n > 0 {
			c.signal()
		}
	}
}

func (c *Controller) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run places waiting tasks until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	// Rebuild the set: changes before this term may have been missed.
	snap := c.cfg.Cache.Snapshot()
	c.mu.Lock()
	snap.Walk(resource.Root, func(e *cache.Entry) bool {
		if t, ok := e.Obj.(*resource.Task); ok && t.Waiting() {
			c.waiting[e.Key] = struct{}{}
		}
		return true
	})
	c.mu.Unlock()
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		if err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("placing waiting tasks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
			// Let a burst of changes settle into one pass.
			time.Sleep(20 * time.Millisecond)
		case <-tick.C:
		}
	}
}

// group is waiting tasks that place alike.
type group struct {
	key   string
	tasks []*resource.Task
}

// Pass places what it can, then stops expired tasks and interrupts Spot tasks
// for on-demand Fargate tasks still waiting.
func (c *Controller) Pass(ctx context.Context) error {
	snap := c.cfg.Cache.Snapshot()
	groups := c.groups(snap)
	if len(groups) == 0 {
		return nil
	}
	var errs []error
	for _, g := range groups {
		if err := c.place(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.expire(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := c.preempt(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// groups collects the waiting tasks of snap, oldest first within a group.
func (c *Controller) groups(snap *cache.Snapshot) []*group {
	c.mu.Lock()
	keys := make([]string, 0, len(c.waiting))
	for k := range c.waiting {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	sort.Strings(keys)
	byKey := map[string]*group{}
	var out []*group
	for _, k := range keys {
		e, ok := snap.Get(k)
		if !ok {
			continue
		}
		t, ok := e.Obj.(*resource.Task)
		if !ok || !t.Waiting() {
			continue
		}
		gk := groupKey(t)
		g := byKey[gk]
		if g == nil {
			g = &group{key: gk}
			byKey[gk] = g
			out = append(out, g)
		}
		g.tasks = append(g.tasks, t)
	}
	for _, g := range out {
		sort.SliceStable(g.tasks, func(i, j int) bool { return createdAt(g.tasks[i]).Before(createdAt(g.tasks[j])) })
	}
	return out
}

// groupKey is what makes two waiting tasks place alike.
func groupKey(t *resource.Task) string {
	b, _ := json.Marshal([]any{t.Scope, t.Cluster, targetOf(t), t.TaskDefinitionArn, t.Group, t.Reserved,
		t.PlacementConstraints, t.PlacementStrategy, t.ServiceName})
	return string(b)
}

func createdAt(t *resource.Task) time.Time {
	if t.CreatedAt == nil {
		return time.Time{}
	}
	return t.CreatedAt.Time
}

// targetOf is where a waiting task was launched to.
func targetOf(t *resource.Task) planner.Target {
	if t.CapacityProviderName != "" {
		return planner.Target{CapacityProvider: t.CapacityProviderName}
	}
	return planner.Target{LaunchType: t.LaunchType}
}

// request rebuilds the placement request a waiting task was launched with.
func request(t *resource.Task, count int) scheduler.Request {
	mode := string(t.Definition.NetworkMode)
	if mode == "" {
		mode = string(ecs.NetworkModeBridge)
	}
	req := scheduler.Request{
		Task: scheduler.Task{CPU: t.Reserved.CPU, Memory: t.Reserved.Memory,
			TCPPorts: slices.Clone(t.Reserved.TCPPorts), UDPPorts: slices.Clone(t.Reserved.UDPPorts), NetworkMode: mode},
		Count: count, Group: t.Group, Seed: int64(len(t.ID)) ^ createdAt(t).UnixNano(),
	}
	for _, a := range t.Definition.RequiresAttributes {
		req.Task.RequiredAttributes = append(req.Task.RequiredAttributes, scheduler.Attribute{Name: a.Name, Value: a.Value})
	}
	for _, pc := range t.Definition.PlacementConstraints {
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: string(pc.Type), Expression: pc.Expression})
	}
	for _, pc := range t.PlacementConstraints {
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: string(pc.Type), Expression: pc.Expression})
	}
	for _, ps := range t.PlacementStrategy {
		req.Strategies = append(req.Strategies, scheduler.Strategy{Type: string(ps.Type), Field: ps.Field})
	}
	if len(req.Strategies) == 0 && t.ServiceName != "" {
		req.Strategies = scheduler.DefaultServiceStrategy()
	}
	return req
}

// place places as many of g's tasks as fit, in one planner transaction.
func (c *Controller) place(ctx context.Context, g *group) error {
	var placed int
	_, _, err := c.cfg.Planner.Commit(ctx, func(snap *cache.Snapshot) (planner.Plan, error) {
		placed = 0
		var tasks []*resource.Task
		for _, t := range g.tasks {
			if e, ok := snap.Get(t.Scope.TaskKey(t.Cluster, t.ID)); ok {
				if cur, ok := e.Obj.(*resource.Task); ok && cur.Waiting() {
					tasks = append(tasks, cur)
				}
			}
		}
		if len(tasks) == 0 {
			return planner.Plan{}, errNothing
		}
		first := tasks[0]
		target := targetOf(first)
		cands := planner.ListCandidates(snap, first.Scope, first.Cluster, target, c.cfg.Now(), c.cfg.AgentTimeout)
		if len(cands.Views) == 0 {
			return planner.Plan{}, errNothing
		}
		p := scheduler.Place(cands.Views, request(first, len(tasks)))
		var out []*resource.Task
		for i, pl := range p.Placements {
			t, err := clone(tasks[i])
			if err != nil {
				return planner.Plan{}, err
			}
			planner.Place(t, cands.Instances[pl.InstanceID], target)
			if t.NetworkConfiguration == nil && t.Definition.NetworkMode != ecs.NetworkModeAwsvpc {
				t.LastStatus = "PENDING"
			}
			t.Version++
			out = append(out, t)
		}
		placed = len(out)
		if placed == 0 {
			return planner.Plan{}, errNothing
		}
		return planner.Plan{Placed: out}, nil
	})
	if err != nil && !errors.Is(err, errNothing) {
		return fmt.Errorf("place %d waiting tasks: %w", len(g.tasks), err)
	}
	if placed > 0 {
		t := g.tasks[0]
		c.log.Info("placed waiting tasks", "cluster", t.Cluster, "target", describe(targetOf(t)), "placed", placed, "still_waiting", len(g.tasks)-placed)
	}
	return nil
}

func describe(t planner.Target) string {
	if t.CapacityProvider != "" {
		return "capacity provider " + t.CapacityProvider
	}
	return "launch type " + string(t.LaunchType)
}

// expire stops tasks that waited longer than WaitTimeout.
func (c *Controller) expire(ctx context.Context) error {
	now := c.cfg.Now()
	var expired int
	_, _, err := c.cfg.Planner.Update(ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		expired = 0
		var out []*resource.Task
		for _, g := range c.groups(snap) {
			for _, t := range g.tasks {
				if now.Sub(createdAt(t)) < c.cfg.WaitTimeout {
					continue
				}
				n, err := clone(t)
				if err != nil {
					return nil, err
				}
				n.DesiredStatus, n.LastStatus = "STOPPED", "STOPPED"
				n.StopCode = ecs.TaskStopCode(resource.StopTaskFailedToStart)
				n.StoppedReason = fmt.Sprintf("Capacity is unavailable: no instance of %s could take the task within %s.", describe(targetOf(t)), c.cfg.WaitTimeout)
				n.StoppingAt, n.StoppedAt, n.ExecutionStoppedAt = ecs.NewTime(now), ecs.NewTime(now), ecs.NewTime(now)
				n.Version++
				out = append(out, n)
			}
		}
		expired = len(out)
		return out, nil
	})
	if expired > 0 {
		c.log.Warn("stopped tasks that waited too long for capacity", "count", expired, "timeout", c.cfg.WaitTimeout)
	}
	return err
}

// preempt interrupts FARGATE_SPOT tasks to make room on the pool for the
// oldest on-demand Fargate task still waiting, one instance at a time: while
// an interruption is in flight in a scope nothing more is interrupted there.
func (c *Controller) preempt(ctx context.Context) error {
	now := c.cfg.Now()
	var victims []string
	_, _, err := c.cfg.Planner.Update(ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		victims = nil
		var out []*resource.Task
		done := map[resource.Scope]bool{}
		for _, g := range c.groups(snap) {
			t := g.tasks[0]
			target := targetOf(t)
			if !target.Fargate() || t.CapacityProviderName == resource.ProviderFargateSpot || done[t.Scope] {
				continue
			}
			done[t.Scope] = true
			spot, inFlight := spotTasks(snap, t.Scope)
			if inFlight {
				continue
			}
			cands := planner.ListCandidates(snap, t.Scope, t.Cluster, target, now, c.cfg.AgentTimeout)
			for _, v := range cands.Views {
				if !v.AgentConnected {
					continue
				}
				pick := chooseVictims(spot[v.ID], v.CPU, v.Memory, t.Reserved.CPU, t.Reserved.Memory)
				if pick == nil {
					continue
				}
				for _, s := range pick {
					n, err := clone(s)
					if err != nil {
						return nil, err
					}
					if n.Interrupt(now, c.cfg.SpotWarning) {
						if planner.Unattended(snap, n) {
							// No agent runs it (an API-registered instance): it is stopped now.
							n.LastStatus, n.StoppedAt, n.ExecutionStoppedAt = "STOPPED", ecs.NewTime(now), ecs.NewTime(now)
						}
						out = append(out, n)
						victims = append(victims, n.TaskArn)
					}
				}
				break
			}
		}
		return out, nil
	})
	if len(victims) > 0 {
		c.log.Info("interrupting FARGATE_SPOT tasks to make room for on-demand Fargate tasks", "tasks", victims, "warning", c.cfg.SpotWarning)
	}
	return err
}

// spotTasks are the running FARGATE_SPOT tasks on the scope's pool by
// instance, and whether an interruption is still in flight.
func spotTasks(snap *cache.Snapshot, scope resource.Scope) (map[string][]*resource.Task, bool) {
	out := map[string][]*resource.Task{}
	inFlight := false
	snap.Walk(scope.KindPrefix(resource.KindTask), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceCluster != resource.FargatePool || t.LastStatus == "STOPPED" || t.CapacityProviderName != resource.ProviderFargateSpot {
			return true
		}
		if t.DesiredStatus == "STOPPED" {
			inFlight = inFlight || t.StopCode == ecs.TaskStopCode(resource.StopSpotInterruption)
			return true
		}
		out[t.InstanceID] = append(out[t.InstanceID], t)
		return true
	})
	return out, inFlight
}

// chooseVictims picks the fewest spot tasks (largest first) whose resources,
// with the instance's free cpu and memory, make room for the need; nil if
// even all of them would not.
func chooseVictims(spot []*resource.Task, freeCPU, freeMem, needCPU, needMem int64) []*resource.Task {
	sorted := slices.Clone(spot)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Reserved.CPU+sorted[i].Reserved.Memory > sorted[j].Reserved.CPU+sorted[j].Reserved.Memory
	})
	var pick []*resource.Task
	for _, t := range sorted {
		if freeCPU >= needCPU && freeMem >= needMem {
			break
		}
		pick = append(pick, t)
		freeCPU += t.Reserved.CPU
		freeMem += t.Reserved.Memory
	}
	if freeCPU < needCPU || freeMem < needMem || len(pick) == 0 {
		return nil
	}
	return pick
}

func clone(t *resource.Task) (*resource.Task, error) { return resource.Clone(t), nil }
