package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// LeaderElector decides which server runs the controllers. Campaign blocks
// until this server leads (or ctx ends) and returns a context that ends when
// leadership is lost. store/etcd implements it with an etcd election; tests
// use AlwaysLeader.
type LeaderElector interface {
	Campaign(ctx context.Context) (leaderCtx context.Context, err error)
}

// AlwaysLeader is an elector for a single server and for tests: it leads at
// once and until ctx ends.
type AlwaysLeader struct{}

func (AlwaysLeader) Campaign(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ctx, nil
}

// Controller is one reconciler. Run does its work until ctx ends (leadership
// lost or shutdown) and returns; it is called again on the next term.
type Controller interface {
	Name() string
	Run(ctx context.Context) error
}

// Manager runs controllers while this server holds leadership.
type Manager struct {
	elector     LeaderElector
	controllers []Controller
	log         *slog.Logger
	// retry is the wait after a failed campaign.
	retry time.Duration

	mu      sync.Mutex
	leading bool
}

// NewManager returns a manager for controllers.
func NewManager(elector LeaderElector, log *slog.Logger, controllers ...Controller) *Manager {
	if elector == nil {
		elector = AlwaysLeader{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Manager{elector: elector, controllers: controllers, log: log.With("component", "controllers"), retry: time.Second}
}

// Leading reports whether this server runs the controllers now.
func (m *Manager) Leading() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leading
}

// Run campaigns, runs every controller for the term, and campaigns again
// when leadership is lost, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lctx, err := m.elector.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			m.log.Warn("leader campaign failed; retrying", "err", err, "retry", m.retry)
			select {
			case <-time.After(m.retry):
			case <-ctx.Done():
			}
			continue
		}
		m.setLeading(true)
		m.log.Info("leading: controllers started")
		var wg sync.WaitGroup
		for _, c := range m.controllers {
			wg.Add(1)
			go func(c Controller) {
				defer wg.Done()
				m.runController(lctx, c)
			}(c)
		}
		<-lctx.Done()
		wg.Wait()
		m.setLeading(false)
		m.log.Info("not leading: controllers stopped")
		if ctx.Err() == nil {
			// A lost term: campaign again after a pause, so a flapping
			// session does not spin.
			select {
			case <-time.After(m.retry):
			case <-ctx.Done():
			}
		}
	}
	return nil
}

// runController runs c for the term. A panic in it is a bug, but must not
// take the whole server (and every other controller) down: it is logged
// with its stack and the controller starts again after a pause.
func (m *Manager) runController(ctx context.Context, c Controller) {
	for {
		panicked := func() (panicked bool) {
			defer func() {
				if p := recover(); p != nil {
					m.log.Error("controller panicked; restarting it", "controller", c.Name(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					panicked = true
				}
			}()
			if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Error("controller stopped", "controller", c.Name(), "err", err)
			}
			return false
		}()
		if !panicked {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.retry):
		}
	}
}

func (m *Manager) setLeading(v bool) {
	m.mu.Lock()
	m.leading = v
	m.mu.Unlock()
}
