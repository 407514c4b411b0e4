// Package session is the agent's side of the agent channel (api/agent): it
// registers the machine as a container instance, keeps one websocket to the
// server, hands pushed task assignments to the engine (agent.TaskApplier) and
// delivers the engine's state changes (agent.Reporter) in order, resending
// whatever the server has not acknowledged after a reconnect.
//
//	Register ──▶ state file (ARN + secret, 0600) ──▶ connect (backoff 100 ms → 5 s, jittered)
//	   ▲                                                 │ Hello{LastAcked}
//	   └── unknown / deregistered instance ◀─────────────┤ ◀── Tasks ──▶ applier.Apply
//	                                                     │ ── StateChange{Seq} ──▶  (unacked kept in order)
//	                                                     │ ◀── Ack{Seq}            (drops ≤ Seq)
//	                                                     │ ── Heartbeat ──▶        (every interval)
//
// Both sides survive the other's restart: the server keeps the instance in its
// store, the agent keeps its identity in the state file.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ecsd/ecsd/agent"
	agentapi "github.com/ecsd/ecsd/api/agent"
)

// Defaults.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// MaxUnacked bounds the state changes kept for resending; beyond it the
	// oldest are dropped (each change is cumulative, so a later one of the same
	// task carries the dropped one's information).
	MaxUnacked = 100000
)

// ErrNewInstance is returned by Run (wrapped in a *NewInstanceError) when the
// server no longer accepted the instance and the session registered the
// machine again under a new ARN: the caller restarts whatever it built on the
// old identity (the engine).
var ErrNewInstance = errors.New("session: registered as a new container instance")

// NewInstanceError says why the instance changed.
type NewInstanceError struct {
	Old, New string
	// Forgotten: the server no longer has the old instance at all (its state
	// was wiped), as opposed to the instance having been deregistered.
	Forgotten bool
}

func (e *NewInstanceError) Error() string {
	return fmt.Sprintf("session: registered as new container instance %s (was %s)", e.New, e.Old)
}

func (e *NewInstanceError) Unwrap() error { return ErrNewInstance }

// Config configures a session.
type Config struct {
	// ServerURL is the ecsd server, e.g. http://127.0.0.1:8080.
	ServerURL string
	// Cluster is the cluster name or ARN ("" is default).
	Cluster string
	// JoinToken admits a new registration.
	JoinToken string
	// DataDir holds the state file (instance ARN and credential).
	DataDir string
	// Registration describes the machine: resources, attributes, versions,
	// zone, instance type, hostname. The session fills in the cluster, the
	// join token and the stored credential.
	Registration agentapi.RegisterRequest
	// AgentVersion is sent in Hello.
	AgentVersion string
	// HTTPClient is used for registration and the websocket (default: a
	// client with a 15 s timeout for registration).
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the reconnect delay.
	MinBackoff, MaxBackoff time.Duration
	// HeartbeatInterval overrides the interval the server asks for (tests).
	HeartbeatInterval time.Duration
	Logger            *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.ServerURL == "":
		return errors.New("session: ServerURL is required (--server)")
	case !strings.HasPrefix(c.ServerURL, "http://") && !strings.HasPrefix(c.ServerURL, "https://"):
		return fmt.Errorf("session: ServerURL %q must start with http:// or https://", c.ServerURL)
	case c.DataDir == "":
		return errors.New("session: DataDir is required (--data-dir)")
	}
	return nil
}

func (c *Config) setDefaults() {
	c.ServerURL = strings.TrimRight(c.ServerURL, "/")
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// identity is the instance the session acts as.
type identity struct {
	arn        string
	secret     string
	clusterArn string
	heartbeat  time.Duration
}

// Session is one agent's connection to the server. It implements agent.Reporter.
type Session struct {
	cfg Config
	log *slog.Logger

	applierMu sync.RWMutex
	applier   agent.TaskApplier

	mu        sync.Mutex
	id        identity
	nextSeq   uint64
	lastAcked uint64
	unacked   []agentapi.StateChange
	connected bool

	wake chan struct{} // cap 1: new state changes to send
}

var _ agent.Reporter = (*Session)(nil)

// New returns a session; call SetApplier, then Register (optional: Run
// registers too), then Run.
func New(cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Session{cfg: cfg, log: cfg.Logger.With("component", "session"), wake: make(chan struct{}, 1)}, nil
}

// SetApplier sets where pushed task assignments go. Call before Run.
func (s *Session) SetApplier(a agent.TaskApplier) {
	s.applierMu.Lock()
	s.applier = a
	s.applierMu.Unlock()
}

// InstanceARN is the container instance the session is registered as ("" before Register).
func (s *Session) InstanceARN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id.arn
}

// ClusterARN is the cluster of the instance ("" before Register).
func (s *Session) ClusterARN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id.clusterArn
}

// Connected reports whether the websocket is up.
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Unacked is the number of state changes waiting for the server's acknowledgement.
func (s *Session) Unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unacked)
}

// Report queues a state change for the server with the next sequence number.
// It never blocks.
func (s *Session) Report(sc agentapi.StateChange) {
	s.mu.Lock()
	s.nextSeq++
	sc.Seq = s.nextSeq
	if sc.At.IsZero() {
		sc.At = time.Now().UTC()
	}
	s.unacked = append(s.unacked, sc)
	if n := len(s.unacked) - MaxUnacked; n > 0 {
		s.log.Warn("too many unacknowledged state changes; dropping the oldest", "dropped", n)
		s.unacked = append([]agentapi.StateChange(nil), s.unacked[n:]...)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ack drops every change up to seq.
func (s *Session) ack(a agentapi.Ack) {
	s.mu.Lock()
	i := 0
	for i < len(s.unacked) && s.unacked[i].Seq <= a.Seq {
		i++
	}
	var rejected *agentapi.StateChange
	if a.Error != "" && i > 0 && s.unacked[i-1].Seq == a.Seq {
		sc := s.unacked[i-1]
		rejected = &sc
	}
	s.unacked = s.unacked[i:]
	if a.Seq > s.lastAcked {
		s.lastAcked = a.Seq
	}
	s.mu.Unlock()
	if a.Error != "" {
		attrs := []any{"seq", a.Seq, "reason", a.Error}
		if rejected != nil {
			attrs = append(attrs, "task", rejected.TaskArn, "status", rejected.Status)
		}
		s.log.Warn("server rejected a state change", attrs...)
	}
}

// pendingAfter returns the queued changes with a sequence number above seq.
func (s *Session) pendingAfter(seq uint64) []agentapi.StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.unacked) && s.unacked[i].Seq <= seq {
		i++
	}
	return append([]agentapi.StateChange(nil), s.unacked[i:]...)
}

func (s *Session) apply(t agentapi.Tasks) {
	s.applierMu.RLock()
	a := s.applier
	s.applierMu.RUnlock()
	if a == nil {
		s.log.Error("task assignments dropped: no applier set", "tasks", len(t.Tasks))
		return
	}
	a.Apply(t)
}

// Run keeps the session connected until ctx ends (nil), the registration is
// refused for good (an *Error), or the machine had to register as a new
// instance (ErrNewInstance).
func (s *Session) Run(ctx context.Context) error {
	if s.InstanceARN() == "" {
		if err := s.Register(ctx); err != nil {
			return err
		}
	}
	backoff := s.cfg.MinBackoff
	for {
		started := time.Now()
		err := s.connectOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ae *Error
		if errors.As(err, &ae) && ae.resumable() {
			// The server does not know us (any more): register again.
			old := s.InstanceARN()
			s.log.Warn("server refused the instance credential; registering again", "code", ae.Code, "message", ae.Message)
			if err := s.Register(ctx); err != nil {
				return err
			}
			if arn := s.InstanceARN(); arn != old {
				return &NewInstanceError{Old: old, New: arn, Forgotten: ae.Code == agentapi.ErrUnknownInstance}
			}
		}
		if time.Since(started) > 10*time.Second {
			backoff = s.cfg.MinBackoff // it was a working connection: retry quickly
		}
		wait := jitter(backoff)
		s.log.Warn("disconnected from server; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// jitter spreads d by ±20% so agents do not reconnect in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
