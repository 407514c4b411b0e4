// Package tmds is the task metadata endpoint (versions 4 and 3) that
// containers reach through ECS_CONTAINER_METADATA_URI_V4 and
// ECS_CONTAINER_METADATA_URI.
//
// Each container is given a random token; its environment names
// <base>/v4/<token>, where the base depends on the container's network mode
// (the endpoint listens on one address per mode: loopback for host mode, the
// Docker bridge's gateway for bridge mode, the awsvpc network's gateway for
// awsvpc). The token selects the container and its task; nothing else is
// visible through it. The data comes from a Source (the task engine), so this
// package does not depend on the engine.
package tmds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPort is where the endpoint listens: the port the ECS agent serves
// its credentials and metadata proxy on (and one ECS reserves on every
// container instance), so no task can have been given it.
const DefaultPort = 51679

// Source provides the data the endpoint serves.
type Source interface {
	// Lookup returns the task of the container that token was issued to, and
	// that container's Docker id ("" if it has not been created). ok is false
	// for an unknown token.
	Lookup(token string) (task Task, dockerID string, ok bool)
	// Stats returns one Docker stats sample of a running container.
	Stats(ctx context.Context, dockerID string) (json.RawMessage, error)
}

// Config configures the endpoint.
type Config struct {
	// Port on every address; 0 means DefaultPort, -1 any free port (tests).
	Port   int
	Logger *slog.Logger
	// StatsTimeout bounds one stats sample (default 5 s).
	StatsTimeout time.Duration
}

// Server is the endpoint: one HTTP handler served on several addresses.
type Server struct {
	cfg Config
	log *slog.Logger
	srv *http.Server

	mu        sync.Mutex
	src       Source
	listeners map[string]net.Listener // by IP
	bases     map[string]string       // network mode → base URL
	closed    bool
}

// New returns a server that listens nowhere yet.
func New(cfg Config) *Server {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StatsTimeout <= 0 {
		cfg.StatsTimeout = 5 * time.Second
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		listeners: map[string]net.Listener{},
		bases:     map[string]string{},
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return s
}

// SetSource sets where the data comes from; until then every token is unknown.
func (s *Server) SetSource(src Source) {
	s.mu.Lock()
	s.src = src
	s.mu.Unlock()
}

func (s *Server) source() Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src
}

// Listen serves on ip (once per ip) and makes it the base for the given
// network modes. It returns the base URL, "http://ip:port".
func (s *Server) Listen(ip string, modes ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("tmds: server closed")
	}
	ln, ok := s.listeners[ip]
	if !ok {
		port := s.cfg.Port
		if port < 0 {
			port = 0
		}
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return "", fmt.Errorf("tmds: listen on %s: %w", ip, err)
		}
		s.listeners[ip] = ln
		go func() {
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("task metadata endpoint stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	base := "http://" + ln.Addr().String()
	for _, m := range modes {
		s.bases[m] = base
	}
	return base, nil
}

// BaseURL is the endpoint as a container in networkMode reaches it ("" if it
// cannot).
func (s *Server) BaseURL(networkMode string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bases[networkMode]
}

// Close stops every listener and waits briefly for requests in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Handler serves the endpoint's paths:
//
//	/v4/<token>             the caller's container
//	/v4/<token>/task        its task
//	/v4/<token>/taskWithTags
//	/v4/<token>/stats       Docker stats of the container
//	/v4/<token>/task/stats  Docker stats of every container of the task, by id
//
// and the same under /v3.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, http.StatusMethodNotAllowed, "Method not allowed: only GET is supported")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || (parts[0] != "v4" && parts[0] != "v3") || parts[1] == "" {
		writeJSON(w, http.StatusNotFound, "Not found: "+r.URL.Path)
		return
	}
	version, token, rest := parts[0], parts[1], strings.Join(parts[2:], "/")
	src := s.source()
	if src == nil {
		writeJSON(w, http.StatusNotFound, "Unable to find the container for this endpoint")
		return
	}
	task, dockerID, ok := src.Lookup(token)
	if !ok {
		writeJSON(w, http.StatusNotFound, "Unable to find the container for this endpoint")
		return
	}
	v3 := version == "v3"
	switch rest {
	case "":
		c, found := containerByID(task, dockerID)
		if !found {
			writeJSON(w, http.StatusNotFound, "The container for this endpoint has not been created yet")
			return
		}
		if v3 {
			writeJSON(w, http.StatusOK, toV3Container(c))
		} else {
			writeJSON(w, http.StatusOK, c)
		}
	case "task", "taskWithTags":
		if rest == "task" {
			task = task.withoutTags()
		}
		if v3 {
			writeJSON(w, http.StatusOK, toV3Task(task))
		} else {
			writeJSON(w, http.StatusOK, task)
		}
	case "stats":
		if dockerID == "" {
			writeJSON(w, http.StatusNotFound, "The container for this endpoint has not been created yet")
			return
		}
		writeJSON(w, http.StatusOK, s.stats(r.Context(), src, dockerID))
	case "task/stats":
		out := map[string]json.RawMessage{}
		for _, c := range task.Containers {
			if c.DockerID != "" {
				out[c.DockerID] = s.stats(r.Context(), src, c.DockerID)
			}
		}
		writeJSON(w, http.StatusOK, out)
	default:
		writeJSON(w, http.StatusNotFound, "Not found: "+r.URL.Path)
	}
}

// stats is one sample, or JSON null when the container has none (not running):
// the agent answers null for containers it has no stats for.
func (s *Server) stats(ctx context.Context, src Source, id string) json.RawMessage {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StatsTimeout)
	defer cancel()
	raw, err := src.Stats(ctx, id)
	if err != nil || len(raw) == 0 {
		if err != nil {
			s.log.Debug("no stats", "container", id, "err", err)
		}
		return json.RawMessage("null")
	}
	return raw
}

func containerByID(t Task, id string) (Container, bool) {
	if id == "" {
		return Container{}, false
	}
	for _, c := range t.Containers {
		if c.DockerID == id {
			return c, true
		}
	}
	return Container{}, false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal("Unable to encode the response")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
