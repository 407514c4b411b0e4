// Package apiserver serves the Amazon ECS JSON 1.1 API. Each operation is one
// function that validates its input, writes through the store with
// compare-and-swap and answers from the cache. Errors become wire codes in
// exactly one place (protocol.go).
package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/store"
)

// Authenticator verifies a request's signature (package auth implements it).
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (auth.Identity, error)
}

// Config is the API server's configuration, parsed once in cmd/ecsd.
type Config struct {
	// MaxBodyBytes bounds a request body; larger bodies are refused before decoding.
	MaxBodyBytes int64
	// DevMode enables operator conveniences that must never run in production:
	// POST /ecsd/reset wipes all state.
	DevMode bool
	// Version is reported by /version and in logs.
	Version string
	// JoinToken admits new agents (POST /agent/v1/register). Empty disables
	// agent registration through the agent channel.
	JoinToken string
	// HeartbeatInterval is how often agents send heartbeats; an agent missing
	// three in a row counts as disconnected (agentConnected false).
	HeartbeatInterval time.Duration
	// StoppedTaskRetention is how long STOPPED tasks stay describable.
	StoppedTaskRetention time.Duration
	// SpotWarning is the stop timeout of an interrupted FARGATE_SPOT task:
	// SIGTERM at once, SIGKILL after it (default 2 min, as on AWS).
	SpotWarning time.Duration
	// Now is the clock; tests inject their own.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 2 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.SpotWarning == 0 {
		c.SpotWarning = 2 * time.Minute
	}
	if c.StoppedTaskRetention == 0 {
		c.StoppedTaskRetention = time.Hour
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if c.MaxBodyBytes < 1024 {
		return errors.New("apiserver: MaxBodyBytes must be at least 1024")
	}
	return nil
}

// Server is the ECS API over one store and its cache.
type Server struct {
	cfg   Config
	st    store.Store
	cache *cache.Cache
	auth  Authenticator
	log   *slog.Logger
	ops   map[string]handler
	plan  *planner.Planner
	hub   *agentHub
}

// New returns a server; the cache must be running (or about to run) on st.
func New(cfg Config, st store.Store, c *cache.Cache, auth Authenticator) (*Server, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, cache: c, auth: auth, log: cfg.Logger.With("component", "apiserver"), plan: planner.New(st, c)}
	s.hub = newAgentHub(s)
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler: the API at "/" and the operator endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serveAPI)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /version", s.serveVersion)
	mux.Handle("GET /metrics", s.metricsHandler())
	if s.cfg.DevMode {
		mux.HandleFunc("POST /ecsd/reset", s.serveReset)
	}
	mux.HandleFunc("POST "+SpotInterruptionPath, s.serveSpotInterruption)
	s.registerAgentEndpoints(mux)
	return mux
}

// routes fills the operation table: every operation of the model is routed, and
// those ecsd does not implement yet answer a typed error naming them.
func (s *Server) routes() {
	s.ops = make(map[string]handler, len(ecs.Operations))
	for name := range ecs.Operations {
		s.ops[name] = notImplemented(name)
	}
	s.registerClusters()
	s.registerTaskDefinitions()
	s.registerTags()
	s.registerAccountSettings()
	s.registerContainerInstances()
	s.registerTasks()
	s.registerServices()
	s.registerAttributes()
	s.registerNodeGroups()
	s.registerCapacityProviders()
}

func notImplemented(name string) handler {
	return func(*Call, []byte) (any, error) {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "ecsd does not implement %s yet.", name)
	}
}

// waitCtx bounds how long a write waits for the cache to show it.
func (s *Server) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}
