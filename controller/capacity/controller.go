package capacity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Defaults.
const (
	DefaultInterval     = 5 * time.Second
	DefaultScaleInDelay = 15 * time.Second
	DefaultDebounce     = 200 * time.Millisecond
	DefaultAgentTimeout = 30 * time.Second
	// ReservationRefresh is how often an unchanged reservation is written
	// again, so ReservationAt shows the metric is live.
	ReservationRefresh = time.Minute
	writeTimeout       = 10 * time.Second
)

// Source is where the controller reads from: the cache.
type Source interface {
	Snapshot() *cache.Snapshot
	Subscribe(fn func(cache.Change))
}

// Config configures a Controller.
type Config struct {
	Store store.Store
	Cache Source
	// Interval between passes (default 5 s); changes to tasks, instances,
	// node groups and providers also trigger one after Debounce.
	Interval time.Duration
	// ScaleInDelay is how long the reservation must stay below target before
	// a group shrinks (default 15 s).
	ScaleInDelay time.Duration
	// Debounce gathers a burst of changes into one pass (default 200 ms).
	Debounce time.Duration
	// AgentTimeout is how long an instance counts as connected after its
	// agent's last heartbeat (default 30 s).
	AgentTimeout time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Controller is managed scaling and managed termination protection for every
// node-group capacity provider.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	kicks chan struct{}

	mu    sync.Mutex
	state map[string]*providerState // by provider key
}

// providerState is what one provider's decisions carry between passes.
type providerState struct {
	belowSince time.Time
	reason     string
}

// New returns a controller; Store and Cache are required. It subscribes to
// the cache at once (a subscription cannot be removed, so it is made once).
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Cache == nil {
		return nil, errors.New("capacity: Store and Cache are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ScaleInDelay <= 0 {
		cfg.ScaleInDelay = DefaultScaleInDelay
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = DefaultAgentTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("component", "capacity"),
		kicks: make(chan struct{}, 1), state: map[string]*providerState{}}
	cfg.Cache.Subscribe(c.onChange)
	return c, nil
}

// Name identifies the controller to the controller manager.
func (c *Controller) Name() string { return "capacity" }

// onChange runs on the cache's goroutine: it only flags that a pass is due.
func (c *Controller) onChange(ch cache.Change) {
	if ch.Relist {
		c.kick()
		return
	}
	_, kind, _, ok := resource.SplitKey(ch.Key)
	if !ok {
		return
	}
	switch kind {
	case resource.KindTask, resource.KindContainerInstance, resource.KindNodeGroup, resource.KindCapacityProvider:
		c.kick()
	}
}

func (c *Controller) kick() {
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

// Run evaluates at once, every Interval, and Debounce after relevant changes,
// until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	var debounce <-chan time.Time
	pass := func() {
		if _, err := c.Evaluate(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("managed scaling pass", "err", err)
		}
	}
	pass()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kicks:
			if debounce == nil {
				debounce = time.After(c.cfg.Debounce)
			}
		case <-debounce:
			debounce = nil
			pass()
		case <-tick.C:
			pass()
		}
	}
}

// Outcome is one provider's decision in a pass and what was written.
type Outcome struct {
	Key      string // the provider's key
	Provider string
	Decision Decision
	// WroteGroup and WroteProvider report the writes that succeeded.
	WroteGroup, WroteProvider bool
}

// Evaluate runs one pass over every ACTIVE node-group capacity provider of
// every scope. Writes that lose a compare-and-swap race are left for the
// next pass (triggered at once).
func (c *Controller) Evaluate(ctx context.Context) ([]Outcome, error) {
	snap := c.cfg.Cache.Snapshot()
	now := c.cfg.Now()
	var out []Outcome
	var errs []error
	seen := map[string]bool{}
	groups := map[string]string{} // node group key → provider key driving it
	for _, scope := range scopes(snap) {
		snap.Walk(scope.KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
			p, ok := e.Obj.(*resource.CapacityProvider)
			if !ok || p.Status != ecs.CapacityProviderStatusACTIVE || p.DeletedAt != nil ||
				p.AutoScalingGroupProvider == nil || p.NodeGroup == "" {
				return true
			}
			ngKey := scope.NodeGroupKey(p.NodeGroup)
			ge, ok := snap.Get(ngKey)
			if !ok {
				return true
			}
			ng, ok := ge.Obj.(*resource.NodeGroup)
			if !ok || ng.Status != "" {
				return true // being deleted: the group drains on its own
			}
			if other, taken := groups[ngKey]; taken {
				c.log.Debug("node group used by two capacity providers; the first drives it",
					"nodeGroup", ng.Name, "provider", p.Name, "first", other)
				return true
			}
			groups[ngKey] = e.Key
			seen[e.Key] = true
			o, err := c.reconcile(ctx, snap, now, e, p, ge, ng)
			if err != nil {
				errs = append(errs, fmt.Errorf("capacity provider %s: %w", p.Name, err))
			}
			out = append(out, o)
			return ctx.Err() == nil
		})
	}
	c.mu.Lock()
	for k := range c.state {
		if !seen[k] {
			delete(c.state, k)
		}
	}
	c.mu.Unlock()
	return out, errors.Join(errs...)
}

// reconcile decides for one provider and writes the changes.
func (c *Controller) reconcile(ctx context.Context, snap *cache.Snapshot, now time.Time, pe *cache.Entry, p *resource.CapacityProvider, ge *cache.Entry, ng *resource.NodeGroup) (Outcome, error) {
	in := Gather(snap, p, ng, now, c.cfg.AgentTimeout)
	c.mu.Lock()
	st := c.state[pe.Key]
	if st == nil {
		st = &providerState{}
		c.state[pe.Key] = st
	}
	in.BelowSince = st.belowSince
	c.mu.Unlock()
	in.ScaleInDelay = c.cfg.ScaleInDelay

	d := Decide(now, in)
	o := Outcome{Key: pe.Key, Provider: p.Name, Decision: d}
	c.mu.Lock()
	st.belowSince = d.BelowSince
	prevReason := st.reason
	st.reason = d.Reason
	c.mu.Unlock()

	attrs := []any{"provider", p.Name, "nodeGroup", ng.Name, "reservation", d.Reservation,
		"running", d.N, "needed", d.M, "waitingTasks", d.Waiting, "nonIdle", d.NonIdle,
		"targetCapacity", in.Scaling.withDefaults().TargetCapacity, "desired", d.Current}
	if !d.Scaled() && d.Reason != prevReason && d.Reason != ReasonSteady && d.Reason != ReasonDisabled {
		c.log.Debug("managed scaling: "+d.Reason, attrs...)
	}

	var errs []error
	if d.Scaled() || len(d.Protect) > 0 {
		next := *ng
		next.Nodes = slices.Clone(ng.Nodes)
		for i := range next.Nodes {
			if v, ok := d.Protect[next.Nodes[i].ID]; ok {
				next.Nodes[i].ProtectedFromScaleIn = v
			}
		}
		if d.Scaled() {
			next.Desired = d.Desired
			at := now
			next.LastScalingAt = &at
		}
		switch err := c.write(ctx, store.Update(ge.Key, resource.Encode(&next), ge.Rev)); {
		case errors.Is(err, errConflict):
		case err != nil:
			errs = append(errs, fmt.Errorf("node group %s: %w", ng.Name, err))
		default:
			o.WroteGroup = true
			if d.Scaled() {
				c.log.Info("managed scaling: "+d.Reason, append(attrs, "newDesired", d.Desired, "newInstances", d.Fresh)...)
			}
		}
	}

	if in.Scaling.Enabled && reservationDue(p, d.Reservation, now) {
		next := *p
		r, at := d.Reservation, now
		next.Reservation, next.ReservationAt = &r, &at
		switch err := c.write(ctx, store.Update(pe.Key, resource.Encode(&next), pe.Rev)); {
		case errors.Is(err, errConflict):
		case err != nil:
			errs = append(errs, fmt.Errorf("reservation: %w", err))
		default:
			o.WroteProvider = true
		}
	}
	return o, errors.Join(errs...)
}

// write applies one CAS op. A lost race (errConflict) is no failure, only a
// reason to look again soon.
func (c *Controller) write(ctx context.Context, op store.Op) error {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_, err := c.cfg.Store.Txn(wctx, op)
	if errors.Is(err, store.ErrConflict) {
		c.kick()
		return errConflict
	}
	return err
}

// errConflict marks a write lost to a concurrent one (not logged as a failure).
var errConflict = errors.New("changed since read; retrying")

// reservationDue reports whether the stored reservation must be written: it
// changed, or it was last written more than ReservationRefresh ago.
func reservationDue(p *resource.CapacityProvider, r float64, now time.Time) bool {
	if p.Reservation == nil || p.ReservationAt == nil {
		return true
	}
	return math.Abs(*p.Reservation-r) >= 0.005 || now.Sub(*p.ReservationAt) >= ReservationRefresh
}

// scopes lists the scopes that hold any record, seeking from one scope's
// prefix to the next instead of walking every key.
func scopes(snap *cache.Snapshot) []resource.Scope {
	var out []resource.Scope
	from := resource.Root
	for {
		var key string
		snap.WalkFrom(resource.Root, from, func(e *cache.Entry) bool {
			key = e.Key
			return false
		})
		if key == "" {
			return out
		}
		scope, _, _, ok := resource.SplitKey(key)
		if !ok {
			from = key + "\x00"
			continue
		}
		out = append(out, scope)
		// The successor of every key under the scope's prefix ("…/" → "…0").
		prefix := scope.Prefix()
		from = prefix[:len(prefix)-1] + "0"
	}
}
