// Package service is ecsd's service scheduler: it keeps every service's
// tasks at its desired count, rolls out deployments within their bounds,
// replaces failed and unhealthy tasks, and writes the service's events.
// Decide (decide.go) is pure; Controller is the loop around it that reads
// the cache and writes through the launcher and the store. See README.md.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/controller/runtime"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/store"
)

// Config tunes the controller; zero values take the defaults.
type Config struct {
	// Workers reconcile different services in parallel (default 4).
	Workers int
	// Resync looks at every service again this often (default 30s), so a
	// missed notification or an expired timer never leaves one behind.
	Resync time.Duration
	// AgentTimeout is how long an instance counts as connected after its
	// agent's last heartbeat (default 30s).
	AgentTimeout time.Duration
	// PlacementRetry is the wait before retrying tasks that could not be
	// placed (default 10s; an instance change retries sooner).
	PlacementRetry time.Duration
	Clock          runtime.Clock
	Logger         *slog.Logger
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.AgentTimeout <= 0 {
		c.AgentTimeout = 30 * time.Second
	}
	if c.PlacementRetry <= 0 {
		c.PlacementRetry = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = runtime.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// opTimeout bounds one reconcile's writes.
const opTimeout = 30 * time.Second

// Controller runs the service scheduler while this server leads.
type Controller struct {
	cfg      Config
	st       store.Store
	cache    *cache.Cache
	launcher TaskLauncher
	log      *slog.Logger

	queue atomic.Pointer[runtime.Queue] // nil while not leading
	// passes counts reconcile passes (for tests and benchmarks).
	passes atomic.Int64
}

var _ runtime.Controller = (*Controller)(nil)

// New returns a controller over the store and its cache. launcher nil uses
// the PlannerLauncher. It subscribes to the cache at once; notifications
// while it does not lead are dropped (a new term starts with a full pass).
func New(cfg Config, st store.Store, c *cache.Cache, launcher TaskLauncher) *Controller {
	cfg.defaults()
	if launcher == nil {
		launcher = &PlannerLauncher{Planner: planner.New(st, c), Clock: cfg.Clock, AgentTimeout: cfg.AgentTimeout}
	}
	ctl := &Controller{cfg: cfg, st: st, cache: c, launcher: launcher, log: cfg.Logger.With("component", "service-controller")}
	c.Subscribe(ctl.notify)
	return ctl
}

func (c *Controller) Name() string { return "service" }

// Passes is the number of reconcile passes so far.
func (c *Controller) Passes() int64 { return c.passes.Load() }

// Run reconciles services until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	q := runtime.NewQueue(runtime.QueueConfig{Clock: c.cfg.Clock})
	c.queue.Store(q)
	defer func() {
		c.queue.Store(nil)
		q.ShutDown()
	}()
	c.enqueueAll(q)
	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(ctx, q)
		}()
	}
	resync := func() {}
	resync = func() {
		if ctx.Err() != nil {
			return
		}
		c.enqueueAll(q)
		c.cfg.Clock.AfterFunc(c.cfg.Resync, resync)
	}
	c.cfg.Clock.AfterFunc(c.cfg.Resync, resync)
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) work(ctx context.Context, q *runtime.Queue) {
	for {
		key, ok := q.Get()
		if !ok {
			return
		}
		after, err := c.reconcile(ctx, key)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn("reconcile failed; retrying", "service", key, "err", err, "failures", q.Failures(key)+1)
			q.AddRateLimited(key)
		case err == nil:
			q.Forget(key)
			if after > 0 {
				q.AddAfter(key, after)
			} else if after < 0 {
				q.Add(key)
			}
		}
		q.Done(key)
	}
}

// Enqueue asks for a pass over one service (tests, and anyone who knows).
func (c *Controller) Enqueue(key string) {
	if q := c.queue.Load(); q != nil {
		q.Add(key)
	}
}

func (c *Controller) enqueueAll(q *runtime.Queue) {
	snap := c.cache.Snapshot()
	snap.Walk(resource.Root, func(e *cache.Entry) bool {
		if _, ok := e.Obj.(*resource.Service); ok {
			q.Add(e.Key)
		}
		return true
	})
}

// notify turns cache changes into keys: a service change queues the service,
// a task change queues its service, and an instance or agent change that can
// matter to placement queues every service of the cluster.
func (c *Controller) notify(ch cache.Change) {
	q := c.queue.Load()
	if q == nil {
		return
	}
	scope, kind, parts, ok := resource.SplitKey(ch.Key)
	if !ok {
		return
	}
	switch kind {
	case resource.KindService:
		q.Add(ch.Key)
	case resource.KindTask:
		for _, e := range []*cache.Entry{ch.New, ch.Old} {
			if e == nil {
				continue
			}
			if t, ok := e.Obj.(*resource.Task); ok && t.ServiceName != "" {
				q.Add(scope.ServiceKey(t.Cluster, t.ServiceName))
				return
			}
		}
	case resource.KindContainerInstance:
		if len(parts) >= 1 && instanceChangeMatters(ch) {
			c.enqueueCluster(q, scope, parts[0])
		}
	case resource.KindPresence:
		if len(parts) >= 1 && presenceChangeMatters(ch) {
			c.enqueueCluster(q, scope, parts[0])
		}
	}
}

func (c *Controller) enqueueCluster(q *runtime.Queue, scope resource.Scope, cluster string) {
	c.cache.Snapshot().Walk(scope.KindPrefix(resource.KindService, cluster), func(e *cache.Entry) bool {
		q.Add(e.Key)
		return true
	})
}

// instanceChangeMatters: a new or removed instance, a status or attribute
// change, or resources given back (which may let waiting tasks place). A
// placement charging resources does not.
func instanceChangeMatters(ch cache.Change) bool {
	if ch.Old == nil || ch.New == nil {
		return true
	}
	o, ok1 := ch.Old.Obj.(*resource.ContainerInstance)
	n, ok2 := ch.New.Obj.(*resource.ContainerInstance)
	if !ok1 || !ok2 {
		return true
	}
	if o.Status != n.Status || len(o.Attributes) != len(n.Attributes) {
		return true
	}
	for i := range o.Attributes {
		if o.Attributes[i] != n.Attributes[i] {
			return true
		}
	}
	return n.Used.CPU < o.Used.CPU || n.Used.Memory < o.Used.Memory || len(n.Used.TCPPorts) < len(o.Used.TCPPorts)
}

func presenceChangeMatters(ch cache.Change) bool {
	if ch.Old == nil || ch.New == nil {
		return true
	}
	o, ok1 := ch.Old.Obj.(*resource.Presence)
	n, ok2 := ch.New.Obj.(*resource.Presence)
	return !ok1 || !ok2 || o.Connected != n.Connected
}

// reconcile runs one pass over the service at key. It returns when to look
// again: > 0 after that long, < 0 at once, 0 when something changes.
func (c *Controller) reconcile(ctx context.Context, key string) (time.Duration, error) {
	c.passes.Add(1)
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	snap := c.cache.Snapshot()
	e, ok := snap.Get(key)
	if !ok {
		return 0, nil
	}
	svc, ok := e.Obj.(*resource.Service)
	if !ok {
		return 0, nil
	}
	now := c.cfg.Clock.Now().UTC()
	cv := viewCluster(snap, svc.Scope, svc.Cluster, now, c.cfg.AgentTimeout)
	var eligible func(scheduler.Instance) bool
	if p := svc.Primary(); p != nil && svc.SchedulingStrategy == ecs.SchedulingStrategyDAEMON {
		if td, err := definition(snap, svc.Scope, p.TaskDefinition); err == nil {
			eligible = eligibility(&td.TaskDefinition, p)
		}
	}
	acts := Decide(svc, cv.serviceTasks(svc, now), cv.serviceInstances(svc, eligible), now)

	if acts.Delete {
		_, err := c.st.Txn(ctx, store.Delete(key, e.Rev))
		if errors.Is(err, store.ErrConflict) {
			return -1, nil
		}
		return 0, err
	}
	var events []string // what this pass did, beside what it decided
	after := acts.RequeueAfter
	if acts.Requeue {
		after = -1
	}
	// Stops first: they make room for launches under the maximum.
	if err := c.stop(ctx, svc, acts.Stop); err != nil {
		return 0, err
	}
	base := svc
	if acts.Next != nil {
		base = acts.Next
	}
	var launchErr error
	for _, l := range acts.Launch {
		dep := base.Rollout(l.DeploymentID)
		if dep == nil {
			continue
		}
		tasks, err := c.launcher.Launch(ctx, base, dep, l.Count, l.InstanceID)
		if len(tasks) > 0 {
			events = append(events, startedEvent(svc.ServiceName, tasks))
		}
		var pe *PlacementError
		switch {
		case errors.As(err, &pe):
			if msg := placementEvent(svc.ServiceName, pe); !recentEvent(svc, msg, now) {
				events = append(events, msg)
			}
			if after == 0 || after > c.cfg.PlacementRetry {
				after = c.cfg.PlacementRetry
			}
		case errors.Is(err, errNoDefinition):
			msg := fmt.Sprintf("(service %s) failed to launch a task: %v.", svc.ServiceName, err)
			if !recentEvent(svc, msg, now) {
				events = append(events, msg)
			}
			after = c.cfg.PlacementRetry
		case err != nil:
			launchErr = err
		}
	}
	if acts.Next != nil || len(acts.Events) > 0 || len(events) > 0 {
		if err := c.write(ctx, key, e.Rev, svc, acts.Next, acts.Events, events, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return -1, nil
			}
			return 0, err
		}
	}
	return after, launchErr
}

func (c *Controller) stop(ctx context.Context, svc *resource.Service, stops []Stop) error {
	type group struct{ code, reason string }
	byGroup := map[group][]string{}
	var order []group
	for _, s := range stops {
		g := group{s.StopCode, s.Reason}
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], s.TaskID)
	}
	for _, g := range order {
		if err := c.launcher.Stop(ctx, svc.Scope, svc.Cluster, byGroup[g], g.code, g.reason); err != nil {
			return err
		}
	}
	return nil
}

// write stores the decision (and every event) with compare-and-swap on the
// revision the pass read, then waits until the cache shows it, so the next
// pass never decides on the record it replaced. On a conflict the decision
// is dropped — the next pass makes it again on the fresh record — but the
// events of what this pass did (tasks started, placement failures) are
// merged into the fresh record, as they happened whatever changed meanwhile.
func (c *Controller) write(ctx context.Context, key string, rev int64, cur, next *resource.Service, decided, done []string, now time.Time) error {
	out := next
	if out == nil {
		out = cloneService(cur)
	}
	addEvents(out, now, decided, done)
	newRev, err := c.st.Txn(ctx, store.Update(key, resource.Encode(out), rev))
	if err == nil {
		return c.cache.WaitFor(ctx, newRev)
	}
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	for attempt := 0; len(done) > 0 && attempt < 5; attempt++ {
		kv, gerr := c.st.Get(ctx, key)
		if errors.Is(gerr, store.ErrNotFound) {
			break
		}
		if gerr != nil {
			return gerr
		}
		obj, derr := resource.Decode(key, kv.Value)
		fresh, ok := obj.(*resource.Service)
		if derr != nil || !ok {
			return fmt.Errorf("service: decode %s: %v", key, derr)
		}
		addEvents(fresh, now, nil, done)
		newRev, err := c.st.Txn(ctx, store.Update(key, resource.Encode(fresh), kv.Revision))
		if err == nil {
			if werr := c.cache.WaitFor(ctx, newRev); werr != nil {
				return werr
			}
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	// Let the cache catch up with the write that won, so the next pass sees it.
	if kv, gerr := c.st.Get(ctx, key); gerr == nil {
		if werr := c.cache.WaitFor(ctx, kv.Revision); werr != nil {
			return werr
		}
	}
	return store.ErrConflict
}

func addEvents(s *resource.Service, now time.Time, lists ...[]string) {
	for _, l := range lists {
		for _, msg := range l {
			s.AddEvent(ecs.ServiceEvent{Id: uuid.NewString(), CreatedAt: ecs.NewTime(now), Message: msg})
		}
	}
}

// ---- event wording, as ECS words them

func startedEvent(service string, tasks []*resource.Task) string {
	var b strings.Builder
	for _, t := range tasks {
		b.WriteString(" (task " + t.ID + ")")
	}
	return fmt.Sprintf("(service %s) has started %d tasks:%s.", service, len(tasks), b.String())
}

func placementEvent(service string, pe *PlacementError) string {
	f := pe.Failure
	msg := fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements.", service)
	switch {
	case f.Reason == scheduler.ReasonNoInstances:
		return msg + " Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	case f.InstanceID != "":
		what := closestMatch(f.Reason)
		msg += fmt.Sprintf(" The closest matching (container-instance %s) %s.", f.InstanceID, what)
	default:
		msg += " Reason: " + f.Reason + "."
	}
	if f.Detail != "" {
		msg += " (" + f.Detail + ")"
	}
	return msg + " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
}

func closestMatch(reason string) string {
	switch reason {
	case scheduler.ReasonCPU:
		return "has insufficient CPU units available"
	case scheduler.ReasonMemory:
		return "has insufficient memory available"
	case scheduler.ReasonPorts, scheduler.ReasonPortsUDP:
		return "is already using a port required by your task"
	case scheduler.ReasonAgent:
		return "is not connected to its agent"
	case scheduler.ReasonAttribute:
		return "is missing an attribute required by your task"
	}
	return "does not meet the requirement: " + strings.TrimSuffix(reason, ".")
}

// recentEvent reports whether the service said msg lately, so a condition
// that persists (no capacity) is not repeated on every retry.
func recentEvent(svc *resource.Service, msg string, now time.Time) bool {
	for _, e := range svc.Events {
		if e.CreatedAt != nil && now.Sub(e.CreatedAt.Time) > placementEventEvery {
			return false
		}
		if e.Message == msg {
			return true
		}
	}
	return false
}
