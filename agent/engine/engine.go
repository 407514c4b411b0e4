// Package engine runs the tasks assigned to this machine as containers: one
// goroutine per task owns that task's state and moves its known status one
// step at a time towards the desired status (see status.go and README.md).
// The engine routes runtime events to the task that owns the container,
// re-attaches to its containers after a restart by their labels, and feeds
// the task metadata endpoint.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecsd/ecsd/agent"
	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/tmds"
	agentapi "github.com/ecsd/ecsd/api/agent"
)

// Engine is the task engine of one container instance.
type Engine struct {
	cfg Config
	rt  runtime.Runtime
	log *slog.Logger

	mu      sync.Mutex
	tasks   map[string]*task // by task ARN
	tokens  map[string]*task // metadata endpoint token → task
	byID    map[string]*task // Docker id → task
	pending []agentapi.Tasks // applied before Run was ready
	ready   bool
	stopped bool
	ctx     context.Context // Run's, for task goroutines
	wg      sync.WaitGroup

	// Set by Run before ready, read-only afterwards.
	awsvpc awsvpcNet
	pool   *pausePool

	// runtimeOff is set when FargateRuntime proved missing from the daemon;
	// fallbackLogged once the first fallback to runc was explained.
	runtimeOff     atomic.Bool
	fallbackLogged atomic.Bool
}

var (
	_ agent.TaskApplier = (*Engine)(nil)
	_ tmds.Source       = (*Engine)(nil)
)

// awsvpcNet is the network awsvpc tasks join.
type awsvpcNet struct {
	name     string
	prefix   netip.Prefix
	gateway  string
	subnetID string
	err      error // the network could not be created: awsvpc tasks fail to start
}

// New returns an engine; Run starts it.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:    cfg,
		rt:     cfg.Runtime,
		log:    cfg.Logger,
		tasks:  map[string]*task{},
		tokens: map[string]*task{},
		byID:   map[string]*task{},
	}
	if cfg.TMDS != nil {
		cfg.TMDS.SetSource(e)
	}
	return e, nil
}

// Timeouts of the engine's own calls (each runtime call also bounds itself).
const (
	setupTimeout   = 60 * time.Second
	inspectTimeout = 15 * time.Second
)

// Run prepares the networks and the metadata endpoint, re-attaches to the
// containers a previous run left, then routes runtime events until ctx ends.
// Stopping the engine leaves containers running: a new engine re-attaches.
func (e *Engine) Run(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	e.setupAwsvpc(sctx)
	if e.cfg.TMDS != nil {
		e.listenTMDS()
		defer e.cfg.TMDS.Close()
	}

	// Subscribe before listing, so nothing that happens in between is lost.
	labels := map[string]string{LabelManaged: "true", LabelInstance: e.cfg.InstanceArn}
	evctx, evcancel := context.WithCancel(ctx)
	defer evcancel()
	subscribed := e.cfg.Clock.Now()
	events, errs := e.rt.Events(evctx, labels, time.Time{})

	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	if err := e.recover(sctx); err != nil {
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
		e.wg.Wait()
		return fmt.Errorf("engine: re-attach to containers: %w", err)
	}
	if e.pool != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.pool.fill(ctx)
		}()
	}

	e.mu.Lock()
	e.ready = true
	for _, ts := range e.pending {
		e.applyLocked(ts)
	}
	e.pending = nil
	e.mu.Unlock()

	last := subscribed
	backoff := 100 * time.Millisecond
	for {
		select {
		case ev, ok := <-events:
			if ok {
				last = ev.Time
				backoff = 100 * time.Millisecond
				e.route(ev)
				continue
			}
			err := <-errs
			if ctx.Err() != nil {
				return e.shutdown()
			}
			e.log.Warn("runtime events lost; reconnecting", "err", err, "since", last)
			select {
			case <-ctx.Done():
				return e.shutdown()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			events, errs = e.rt.Events(evctx, labels, last)
			// Events may have been missed: every task re-reads its containers.
			e.broadcast(message{kind: msgResync})
		case <-ctx.Done():
			return e.shutdown()
		}
	}
}

func (e *Engine) shutdown() error {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.wg.Wait()
	if e.pool != nil {
		// Idle pause containers belong to no task: a next engine of this
		// instance fills its own pool, and one under a new identity (or none,
		// when ecsd dev stops) would leave them behind for good.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for c := e.pool.take(); c != nil; c = e.pool.take() {
			if err := e.rt.Remove(ctx, c.id, true); err != nil {
				e.log.Warn("removing an idle pause container failed", "id", c.id, "err", err)
			}
		}
	}
	return nil
}

// setupAwsvpc creates (or adopts) the awsvpc network. A failure is kept and
// given as the reason of every awsvpc task; other tasks are unaffected.
func (e *Engine) setupAwsvpc(ctx context.Context) {
	p, _ := netip.ParsePrefix(e.cfg.AwsvpcSubnet)
	p = p.Masked()
	n := awsvpcNet{name: e.cfg.AwsvpcNetwork, prefix: p, gateway: p.Addr().Next().String(), subnetID: e.cfg.AwsvpcSubnetID}
	if n.subnetID == "" {
		h := sha256.Sum256([]byte(n.name + "|" + p.String()))
		n.subnetID = "subnet-" + hex.EncodeToString(h[:])[:17]
	}
	if _, err := e.rt.EnsureNetwork(ctx, n.name, p.String()); err != nil {
		n.err = err
		e.log.Error("awsvpc network unavailable; awsvpc tasks will fail to start", "network", n.name, "subnet", p, "err", err)
	}
	e.awsvpc = n
	if n.err == nil && e.cfg.PausePoolSize > 0 {
		e.pool = newPausePool(e, e.cfg.PausePoolSize)
	}
}

// listenTMDS makes the metadata endpoint reachable from every network mode:
// loopback for host (and none) mode, the default bridge's gateway, the awsvpc
// network's gateway.
func (e *Engine) listenTMDS() {
	if _, err := e.cfg.TMDS.Listen("127.0.0.1", "host", "none"); err != nil {
		e.log.Warn("task metadata endpoint unavailable to host-mode tasks", "err", err)
	}
	if gw := e.bridgeGateway(); gw != "" {
		if _, err := e.cfg.TMDS.Listen(gw, "bridge"); err != nil {
			e.log.Warn("task metadata endpoint unavailable to bridge-mode tasks", "err", err)
		}
	}
	if e.awsvpc.err == nil {
		if _, err := e.cfg.TMDS.Listen(e.awsvpc.gateway, "awsvpc"); err != nil {
			e.log.Warn("task metadata endpoint unavailable to awsvpc tasks", "err", err)
		}
	}
}

// bridgeGateway is the host's address on Docker's default bridge.
func (e *Engine) bridgeGateway() string {
	if e.cfg.BridgeGateway != "" {
		return e.cfg.BridgeGateway
	}
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		return ""
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// Apply hands desired state to the tasks' goroutines. Before Run is ready
// (re-attachment not finished) it is queued, so a first full list is matched
// against the re-attached tasks.
func (e *Engine) Apply(ts agentapi.Tasks) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if !e.ready {
		e.pending = append(e.pending, ts)
		return
	}
	e.applyLocked(ts)
}

func (e *Engine) applyLocked(ts agentapi.Tasks) {
	listed := make(map[string]bool, len(ts.Tasks))
	for _, a := range ts.Tasks {
		if a.TaskArn == "" {
			continue
		}
		listed[a.TaskArn] = true
		t := e.tasks[a.TaskArn]
		if t == nil {
			if a.DesiredStatus == StatusStopped {
				// Nothing of it runs here: tell the server it is stopped.
				e.cfg.Reporter.Report(stoppedUnknown(a, e.cfg.Clock.Now()))
				continue
			}
			t = newTask(e, a.TaskArn)
			e.tasks[a.TaskArn] = t
			e.startTask(t)
		}
		if a.DesiredStatus == StatusStopped {
			t.abortStart()
		}
		t.post(message{kind: msgAssign, asg: a})
	}
	if ts.Full {
		for arn, t := range e.tasks {
			if !listed[arn] {
				t.abortStart()
				t.post(message{kind: msgUnlisted})
			}
		}
	}
}

func (e *Engine) startTask(t *task) {
	e.wg.Add(1)
	go t.run(e.ctx)
}

// route gives a runtime event to the task owning the container.
func (e *Engine) route(ev runtime.Event) {
	e.mu.Lock()
	t := e.byID[ev.ContainerID]
	if t == nil {
		if arn := ev.Labels[LabelTaskARN]; arn != "" {
			t = e.tasks[arn]
		}
	}
	e.mu.Unlock()
	if t != nil {
		t.post(message{kind: msgEvent, ev: ev})
		return
	}
	if e.pool != nil && ev.Labels[labelPool] == "true" && (ev.Action == runtime.EventDie || ev.Action == runtime.EventDestroy) {
		e.pool.drop(ev.ContainerID)
	}
}

func (e *Engine) broadcast(m message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.tasks {
		t.post(m)
	}
}

// registerID records that the container id belongs to t.
func (e *Engine) registerID(id string, t *task) {
	if id == "" {
		return
	}
	e.mu.Lock()
	e.byID[id] = t
	e.mu.Unlock()
}

func (e *Engine) registerToken(token string, t *task) {
	if token == "" {
		return
	}
	e.mu.Lock()
	e.tokens[token] = t
	e.mu.Unlock()
}

// forget removes a finished task; it fails (and the task keeps running its
// loop) if a message arrived in the meantime.
func (e *Engine) forget(t *task) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.in.size() > 0 {
		return false
	}
	if e.tasks[t.arn] == t {
		delete(e.tasks, t.arn)
	}
	for _, c := range t.allContainers() {
		if c.token != "" && e.tokens[c.token] == t {
			delete(e.tokens, c.token)
		}
		if c.id != "" && e.byID[c.id] == t {
			delete(e.byID, c.id)
		}
	}
	return true
}

// Lookup implements tmds.Source.
func (e *Engine) Lookup(token string) (tmds.Task, string, bool) {
	e.mu.Lock()
	t := e.tokens[token]
	e.mu.Unlock()
	if t == nil {
		return tmds.Task{}, "", false
	}
	v, id, ok := t.lookup(token)
	if !ok {
		return tmds.Task{}, "", false
	}
	return v.task, id, true
}

// Stats implements tmds.Source.
func (e *Engine) Stats(ctx context.Context, dockerID string) (json.RawMessage, error) {
	e.mu.Lock()
	_, ok := e.byID[dockerID]
	e.mu.Unlock()
	if !ok {
		return nil, errors.New("not a container of this engine")
	}
	return e.rt.Stats(ctx, dockerID)
}
