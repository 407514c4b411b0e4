// Package nodegroup keeps every node group at its desired count: it asks the
// provisioner for machines when a group has too few nodes and removes idle
// ones when it has too many, and links each node to the container instance
// its agent registered.
//
//	every Interval (or on a change): snapshot ─▶ per group: plan ─▶ one CAS txn
//	  (the group record, plus DRAINING for instances chosen for removal)
//	  ─▶ after it commits: Launch / Terminate (bounded, outside the txn)
//	  ─▶ each result is another CAS write of the group record
//
// Decisions are committed before any machine is touched, so two leaders
// (one about to lose its term) can never both launch for the same shortfall:
// only the one whose write won acts. A node lives Pending (asked for) →
// InService (its agent registered) → Terminating (chosen for removal) → gone
// (terminated, its instance deregistered).
package nodegroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Defaults.
const (
	DefaultInterval         = 2 * time.Second
	DefaultLaunchTimeout    = 2 * time.Minute
	DefaultTerminateTimeout = 2 * time.Minute
	DefaultRetryDelay       = 10 * time.Second
	DefaultHealthGrace      = 3 * time.Minute
	DefaultConcurrency      = 4
	// writeTimeout bounds one store write.
	writeTimeout = 10 * time.Second
	// maxWriteAttempts bounds the read-modify-CAS loops of the async steps.
	maxWriteAttempts = 10
)

// Snapshotter is where the controller reads from (the cache).
type Snapshotter interface {
	Snapshot() *cache.Snapshot
}

// subscriber is the cache's change feed, used (when present) to react to a
// change before the next interval.
type subscriber interface {
	Subscribe(fn func(cache.Change))
}

// Config configures the controller.
type Config struct {
	Store       store.Store
	Cache       Snapshotter
	Provisioner provisioner.Provisioner
	// ServerURL and JoinToken are handed to new nodes' agents.
	ServerURL string
	JoinToken string
	// Interval between passes (default 2 s); changes to groups and their
	// instances also trigger a pass.
	Interval time.Duration
	// LaunchTimeout is how long a node may stay Pending (its agent not
	// registered) before it is terminated and replaced (default 2 min); it
	// also bounds one Launch call.
	LaunchTimeout time.Duration
	// TerminateTimeout bounds one Terminate call (default 2 min).
	TerminateTimeout time.Duration
	// HealthGrace is how long an in-service node's agent may go unheard
	// (no heartbeat) before the node is replaced (default 3 min).
	HealthGrace time.Duration
	// RetryDelay paces retries after a failed launch or terminate (default 10 s).
	RetryDelay time.Duration
	// Concurrency bounds provisioner calls in flight (default 4).
	Concurrency int
	Now         func() time.Time
	Logger      *slog.Logger
}

// Controller reconciles node groups.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	sem  chan struct{}
	wake chan struct{}
	wg   sync.WaitGroup

	mu sync.Mutex
	// inflight holds the nodes with a provisioner call running (one per node).
	inflight map[string]bool
	// retryAt holds when a node whose last call failed may be tried again.
	retryAt map[string]time.Time
	// unmet is the last "desired count cannot be reached" reason logged per
	// group, so it is logged once per change rather than every pass.
	unmet map[string]string
}

// New returns a controller; Store, Cache and Provisioner are required.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Cache == nil || cfg.Provisioner == nil {
		return nil, errors.New("nodegroup: Store, Cache and Provisioner are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.LaunchTimeout <= 0 {
		cfg.LaunchTimeout = DefaultLaunchTimeout
	}
	if cfg.TerminateTimeout <= 0 {
		cfg.TerminateTimeout = DefaultTerminateTimeout
	}
	if cfg.HealthGrace <= 0 {
		cfg.HealthGrace = DefaultHealthGrace
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("component", "nodegroup"),
		sem: make(chan struct{}, cfg.Concurrency), wake: make(chan struct{}, 1),
		inflight: map[string]bool{}, retryAt: map[string]time.Time{}, unmet: map[string]string{}}
	if sub, ok := cfg.Cache.(subscriber); ok {
		sub.Subscribe(c.onChange)
	}
	return c, nil
}

// Name identifies the controller to the controller manager.
func (c *Controller) Name() string { return "nodegroup" }

// Run reconciles at start, every Interval and on changes, until ctx ends;
// then it waits for the provisioner calls in flight (they see ctx end).
func (c *Controller) Run(ctx context.Context) error {
	defer c.wg.Wait()
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.wake:
		}
	}
}

// Wait blocks until the provisioner calls started so far have finished (tests).
func (c *Controller) Wait() { c.wg.Wait() }

// onChange runs on the cache's goroutine: a change to a group, a group's
// instance or a capacity provider asks for a pass (coalesced, never blocks).
func (c *Controller) onChange(ch cache.Change) {
	_, kind, _, ok := resource.SplitKey(ch.Key)
	if !ok {
		return
	}
	switch kind {
	case resource.KindNodeGroup, resource.KindCapacityProvider:
	case resource.KindContainerInstance:
		e := ch.New
		if e == nil {
			e = ch.Old
		}
		if ci, ok := e.Obj.(*resource.ContainerInstance); !ok || ci.NodeGroup == "" {
			return
		}
	default:
		return
	}
	c.poke()
}

func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Reconcile runs one pass over every group of every scope. Provisioner calls
// it decides on run in the background (see Wait).
func (c *Controller) Reconcile(ctx context.Context) error {
	snap := c.cfg.Cache.Snapshot()
	var firstErr error
	for _, scope := range scopes(snap) {
		var groups []*cache.Entry
		snap.Walk(scope.KindPrefix(resource.KindNodeGroup), func(e *cache.Entry) bool {
			if _, ok := e.Obj.(*resource.NodeGroup); ok {
				groups = append(groups, e)
			}
			return true
		})
		for _, e := range groups {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := c.reconcileGroup(ctx, snap, e); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// scopes lists the account/region scopes that hold any key, skipping over
// each scope's keys with one seek.
func scopes(snap *cache.Snapshot) []resource.Scope {
	var out []resource.Scope
	from := resource.Root
	for {
		var next *resource.Scope
		snap.WalkFrom(resource.Root, from, func(e *cache.Entry) bool {
			if sc, _, _, ok := resource.SplitKey(e.Key); ok {
				next = &sc
				return false
			}
			return true
		})
		if next == nil {
			return out
		}
		out = append(out, *next)
		p := next.Prefix()
		from = p[:len(p)-1] + string(rune('/'+1)) // just past every key under the scope
	}
}

func nodeKey(groupKey, nodeID string) string { return groupKey + "#" + nodeID }

// claim marks a node's provisioner call as running; false if one already is
// or its retry time has not come.
func (c *Controller) claim(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[key] || now.Before(c.retryAt[key]) {
		return false
	}
	c.inflight[key] = true
	return true
}

func (c *Controller) busy(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight[key]
}

// release ends a node's call; failed delays its next try.
func (c *Controller) release(key string, failed bool) {
	c.mu.Lock()
	delete(c.inflight, key)
	if failed {
		c.retryAt[key] = c.cfg.Now().Add(c.cfg.RetryDelay)
	} else {
		delete(c.retryAt, key)
	}
	c.mu.Unlock()
	c.poke()
}

// async runs fn in the background, at most Concurrency at once.
func (c *Controller) async(ctx context.Context, fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-c.sem }()
		defer func() {
			// A bug in one node's call must not take the server down.
			if p := recover(); p != nil {
				c.log.Error("node group call panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		fn()
	}()
}

// noteUnmet logs why a group cannot reach its desired count, once per
// situation (sig: the reason with the counts it was logged for).
func (c *Controller) noteUnmet(groupKey, reason, sig string, args ...any) {
	c.mu.Lock()
	same := c.unmet[groupKey] == sig
	if reason == "" {
		delete(c.unmet, groupKey)
	} else {
		c.unmet[groupKey] = sig
	}
	c.mu.Unlock()
	if !same && reason != "" {
		c.log.Info(reason, args...)
	}
}

// updateGroup is a read-modify-CAS loop on a group record read from the
// store (not the cache: an async step must see the latest). fn returns false
// to write nothing; a missing record calls fn with nil.
func (c *Controller) updateGroup(ctx context.Context, key string, fn func(g *resource.NodeGroup) bool) error {
	for range maxWriteAttempts {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		kv, err := c.cfg.Store.Get(wctx, key)
		cancel()
		var g *resource.NodeGroup
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			obj, derr := resource.Decode(key, kv.Value)
			if derr != nil {
				return derr
			}
			var ok bool
			if g, ok = obj.(*resource.NodeGroup); !ok {
				return fmt.Errorf("nodegroup: %s holds %T", key, obj)
			}
		}
		if !fn(g) || g == nil {
			return nil
		}
		wctx, cancel = context.WithTimeout(ctx, writeTimeout)
		_, err = c.cfg.Store.Txn(wctx, store.Update(key, resource.Encode(g), kv.Revision))
		cancel()
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("nodegroup: %s kept changing; gave up after %d attempts", key, maxWriteAttempts)
}

// updateInstance is the same loop on a container instance record.
func (c *Controller) updateInstance(ctx context.Context, key string, fn func(ci *resource.ContainerInstance) bool) error {
	for range maxWriteAttempts {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		kv, err := c.cfg.Store.Get(wctx, key)
		cancel()
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		obj, err := resource.Decode(key, kv.Value)
		if err != nil {
			return err
		}
		ci, ok := obj.(*resource.ContainerInstance)
		if !ok {
			return fmt.Errorf("nodegroup: %s holds %T", key, obj)
		}
		if !fn(ci) {
			return nil
		}
		wctx, cancel = context.WithTimeout(ctx, writeTimeout)
		_, err = c.cfg.Store.Txn(wctx, store.Update(key, resource.Encode(ci), kv.Revision))
		cancel()
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("nodegroup: %s kept changing; gave up after %d attempts", key, maxWriteAttempts)
}
