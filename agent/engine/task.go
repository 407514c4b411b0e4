package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

type msgKind int

const (
	msgAssign   msgKind = iota // a new desired state from the server
	msgEvent                   // a runtime event of one of the task's containers
	msgResync                  // events may have been lost: re-read the containers
	msgUnlisted                // the server's full list does not have the task
	msgCleanup                 // the cleanup wait is over
)

type message struct {
	kind msgKind
	asg  agentapi.TaskAssignment
	ev   runtime.Event
}

// inbox is an unbounded queue: posting never blocks the engine's router or
// Apply, whatever the task's goroutine is doing.
type inbox struct {
	mu     sync.Mutex
	items  []message
	signal chan struct{}
}

func (q *inbox) push(m message) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *inbox) drain() []message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

func (q *inbox) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// attachment is an awsvpc task's network attachment (its "ENI").
type attachment struct {
	id       string
	status   string // ATTACHED, DETACHING, DELETED
	ip       string
	mac      string
	dnsName  string
	eniID    string
	subnetID string
}

// task is one task's state, owned by its goroutine (run). Other goroutines
// only post messages, cancel the start context, and read the published view.
type task struct {
	e   *Engine
	arn string
	id  string
	log *slog.Logger
	in  inbox

	asg       agentapi.TaskAssignment
	assigned  bool // has a definition (a re-attached task waits for one)
	recovered bool // re-attached after an engine restart
	unlisted  bool // dropped from the server's full list: stop, clean up at once

	networkMode string
	// runtime is the OCI runtime the task's app containers are created with
	// ("" = the daemon's default); FARGATE tasks only (fargate.go).
	runtime    string
	known      string
	desired    string
	stopCode   string
	stopReason string

	containers []*container // definition order
	byName     map[string]*container
	pause      *container
	att        *attachment

	pulled             bool
	pullStartedAt      time.Time
	pullStoppedAt      time.Time
	startedAt          time.Time
	executionStoppedAt time.Time
	connectivityAt     time.Time
	waitingSince       time.Time // when the start began waiting on dependencies

	cleanupTimer *time.Timer
	cleanupDue   bool
	done         bool

	startMu     sync.Mutex
	startCtx    context.Context
	cancelStart context.CancelFunc

	last   *agentapi.StateChange
	view   atomic.Pointer[taskView]
	viewMu sync.Mutex
	viewCh chan struct{}
}

func newTask(e *Engine, arn string) *task {
	t := &task{
		e:       e,
		arn:     arn,
		id:      taskID(arn),
		log:     e.log.With("task", arn),
		known:   StatusProvisioning,
		desired: StatusRunning,
		byName:  map[string]*container{},
	}
	t.in.signal = make(chan struct{}, 1)
	t.startCtx, t.cancelStart = context.WithCancel(context.Background())
	return t
}

func (t *task) post(m message) { t.in.push(m) }

// abortStart interrupts a pull or a wait on the way to RUNNING; called from
// Apply when the task is to stop.
func (t *task) abortStart() {
	t.startMu.Lock()
	t.cancelStart()
	t.startMu.Unlock()
}

// startContext is ctx, also cancelled when the task is told to stop.
func (t *task) startContext(ctx context.Context) (context.Context, context.CancelFunc) {
	t.startMu.Lock()
	sc := t.startCtx
	t.startMu.Unlock()
	c, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sc, cancel)
	return c, func() { stop(); cancel() }
}

func (t *task) now() time.Time { return t.e.cfg.Clock.Now() }

func (t *task) allContainers() []*container {
	if t.pause == nil {
		return t.containers
	}
	return append(append([]*container(nil), t.containers...), t.pause)
}

// run is the task's goroutine: apply messages, take the next step, publish,
// wait for something to happen.
func (t *task) run(ctx context.Context) {
	defer t.e.wg.Done()
	defer func() {
		if t.cleanupTimer != nil {
			t.cleanupTimer.Stop()
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		for _, m := range t.in.drain() {
			t.handle(ctx, m)
		}
		t.publish()
		if ctx.Err() != nil {
			return
		}
		if t.done {
			if t.e.forget(t) {
				return
			}
			continue
		}
		if t.step(ctx) {
			t.publish()
			continue
		}
		var wake <-chan time.Time
		if d := t.deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-t.in.signal:
		case <-wake:
		}
		timer.Stop()
	}
}

// deadline is when the task must look again without an event: the earliest
// startTimeout of a container waiting on its dependencies.
func (t *task) deadline() time.Time {
	if t.known != StatusPending || t.desired != StatusRunning || t.waitingSince.IsZero() {
		return time.Time{}
	}
	var d time.Time
	for _, c := range t.containers {
		if c.started || c.def.StartTimeout == nil || *c.def.StartTimeout <= 0 {
			continue
		}
		at := t.waitingSince.Add(time.Duration(*c.def.StartTimeout) * time.Second)
		if d.IsZero() || at.Before(d) {
			d = at
		}
	}
	return d
}

func (t *task) handle(ctx context.Context, m message) {
	switch m.kind {
	case msgAssign:
		if t.assigned && m.asg.Version != 0 && m.asg.Version < t.asg.Version {
			return // older than what the task already has
		}
		if !t.assigned {
			t.attach(m.asg)
		} else {
			t.asg = m.asg
		}
		if m.asg.DesiredStatus == StatusStopped {
			t.requestStop(m.asg.StopCode, m.asg.StoppedReason)
		}
	case msgUnlisted:
		t.unlisted = true
		t.requestStop("", "")
		if t.known == StatusStopped {
			t.cleanupDue = true
		}
	case msgCleanup:
		t.cleanupDue = true
	case msgEvent:
		t.handleEvent(ctx, m.ev)
	case msgResync:
		for _, c := range t.allContainers() {
			if c.id != "" && !c.exited {
				t.refresh(ctx, c)
			}
		}
	}
}

// attach takes the task's first assignment: the containers of its
// definition, matched by name with any re-attached ones.
func (t *task) attach(a agentapi.TaskAssignment) {
	t.asg = a
	t.assigned = true
	def := a.Definition
	t.networkMode = string(def.NetworkMode)
	if t.networkMode == "" {
		t.networkMode = "bridge"
	}
	if t.fargate() {
		t.runtime = t.e.fargateRuntime()
	}
	var list []*container
	seen := map[string]bool{}
	for _, d := range def.ContainerDefinitions {
		c := t.byName[d.Name]
		if c == nil {
			c = &container{name: d.Name, token: newToken(), dockerName: dockerName(def.Family, def.Revision, d.Name)}
		}
		c.def = effectiveDefinition(d, overrideFor(a.Overrides, d.Name))
		c.haveDef = true
		c.essential = d.Essential == nil || *d.Essential
		c.stopAfter = t.e.cfg.DefaultStopTimeout
		if d.StopTimeout != nil && *d.StopTimeout > 0 {
			c.stopAfter = time.Duration(*d.StopTimeout) * time.Second
		}
		c.image = d.Image
		c.hasHealth = d.HealthCheck != nil && len(d.HealthCheck.Command) > 0
		if c.health == "" {
			c.health = HealthUnknown
		}
		list = append(list, c)
		seen[d.Name] = true
		t.e.registerToken(c.token, t)
	}
	for _, c := range t.containers {
		if !seen[c.name] {
			list = append(list, c) // re-attached but no longer defined: stopped with the task
		}
	}
	t.containers = list
	t.byName = map[string]*container{}
	for _, c := range list {
		t.byName[c.name] = c
	}
	if t.recovered {
		t.pulled = true
		for _, c := range t.containers {
			t.pulled = t.pulled && c.id != ""
		}
		all := true
		for _, c := range t.containers {
			all = all && c.started
		}
		if t.known == StatusRunning && !all {
			t.known = StatusPending
		}
		for _, c := range t.containers {
			if c.exited && c.essential {
				t.requestStop(string(ecs.TaskStopCodeEssentialContainerExited), reasonEssential)
			}
		}
		if t.pause != nil && !t.pause.running {
			t.requestStop(string(ecs.TaskStopCodeEssentialContainerExited), reasonEssential)
		}
	}
	if err := checkDependencies(def.ContainerDefinitions); err != nil {
		t.fail(err.Error())
	}
	if t.fargate() && t.networkMode != "awsvpc" {
		t.fail("ResourceInitializationError: FARGATE tasks need the awsvpc network mode; got " + t.networkMode)
	}
	if t.networkMode == "awsvpc" && t.e.awsvpc.err != nil && t.pause == nil {
		t.fail("ResourceInitializationError: awsvpc network unavailable: " + t.e.awsvpc.err.Error())
	}
}

// requestStop moves the desired status to STOPPED (it never moves back); the
// first stop code and reason stay.
func (t *task) requestStop(code, reason string) {
	if t.stopCode == "" && t.stopReason == "" {
		t.stopCode, t.stopReason = code, reason
	}
	if t.desired == StatusStopped {
		return
	}
	t.desired = StatusStopped
	t.abortStart()
}

// fail stops a task that could not start.
func (t *task) fail(reason string) {
	t.log.Info("task failed to start", "reason", reason)
	t.refillPool()
	t.requestStop(string(ecs.TaskStopCodeTaskFailedToStart), reason)
}

func (t *task) containerByID(id string) *container {
	for _, c := range t.allContainers() {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (t *task) handleEvent(ctx context.Context, ev runtime.Event) {
	c := t.containerByID(ev.ContainerID)
	if c == nil {
		return
	}
	switch ev.Action {
	case runtime.EventDie:
		if !c.exited {
			t.refresh(ctx, c)
		}
	case runtime.EventOOM:
		c.oom = true
	case runtime.EventHealthStatus:
		if !c.exited {
			c.setHealth(ev.Health, ev.Time)
		}
	case runtime.EventDestroy:
		if !c.exited {
			t.gone(c)
		}
	}
}

// refresh inspects a container and acts on an exit it shows.
func (t *task) refresh(ctx context.Context, c *container) {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	st, err := t.e.rt.Inspect(ctx, c.id)
	if errors.Is(err, runtime.ErrNotFound) {
		t.gone(c)
		return
	}
	if err != nil {
		t.log.Warn("inspect failed", "container", c.name, "err", err)
		return
	}
	if c.observe(st) {
		t.exited(c)
	}
}

// gone records a container removed behind the engine's back.
func (t *task) gone(c *container) {
	wasRunning := c.running || !c.exited
	c.running = false
	if c.started || c.pause {
		c.exited = true
		if c.reason == "" {
			c.reason = "Container removed outside ecsd"
		}
	}
	if wasRunning {
		t.exited(c)
	}
}

// exited applies essential-container semantics to a container that stopped.
func (t *task) exited(c *container) {
	if c.stopped || t.desired == StatusStopped {
		return
	}
	if c.pause || c.essential {
		t.log.Info("essential container exited", "container", c.name, "exitCode", derefInt(c.exitCode))
		t.requestStop(string(ecs.TaskStopCodeEssentialContainerExited), reasonEssential)
	}
}

func derefInt(p *int32) int {
	if p == nil {
		return -1
	}
	return int(*p)
}

// step takes the next step of the transition table and reports whether it
// did something (so the loop goes on without waiting).
func (t *task) step(ctx context.Context) bool {
	if t.known == StatusStopped {
		if t.cleanupDue {
			t.cleanup(ctx)
			t.done = true
			return true
		}
		return false
	}
	if !t.assigned && t.desired != StatusStopped {
		return false // re-attached: wait for the server's view
	}
	next := nextStatus(t.known, t.desired, t.facts())
	if next == "" {
		return false
	}
	switch {
	case t.known == StatusProvisioning && next == StatusPending:
		if err := t.provision(ctx); err != nil {
			if ctx.Err() == nil && t.desired == StatusRunning {
				t.fail(err.Error())
			}
			return true
		}
		t.connectivityAt = t.now()
	case t.known == StatusPending && next == StatusActivating:
		done, progressed := t.advanceStart(ctx)
		if !done {
			return progressed
		}
	case next == StatusRunning:
		t.startedAt = t.now()
		t.refillPool()
	case t.known == StatusStopping && next == StatusDeprovisioning:
		t.stopContainers(ctx)
		if ctx.Err() != nil {
			return false
		}
		t.executionStoppedAt = t.now()
	case next == StatusStopped:
		t.deprovision(ctx)
		if ctx.Err() != nil {
			return false
		}
		if t.executionStoppedAt.IsZero() {
			t.executionStoppedAt = t.now()
		}
		t.scheduleCleanup()
	}
	t.log.Debug("task status", "from", t.known, "to", next)
	t.known = next
	if next == StatusDeprovisioning && t.att != nil {
		t.att.status = "DETACHING"
	}
	return true
}

// refillPool lets the pause pool replace what this task took, once the
// task's own start no longer competes with it.
func (t *task) refillPool() {
	if t.pause != nil && t.e.pool != nil {
		t.e.pool.kick()
	}
}

func (t *task) facts() facts {
	f := facts{network: t.pause != nil}
	for _, c := range t.containers {
		if c.id != "" {
			f.created = true
		}
	}
	return f
}

// scheduleCleanup arranges for the stopped task's containers to be removed
// after the cleanup wait (at once for a task the server no longer lists).
func (t *task) scheduleCleanup() {
	if t.unlisted {
		t.cleanupDue = true
		return
	}
	t.cleanupTimer = time.AfterFunc(t.e.cfg.CleanupWait, func() { t.post(message{kind: msgCleanup}) })
}
