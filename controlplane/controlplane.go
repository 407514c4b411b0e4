// Package controlplane assembles one ecsd server: the store (embedded or
// external etcd), the watch-fed cache and the API server on a listener.
// cmd/ecsd and the tests start it the same way.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store/etcd"
)

// Config is the whole server configuration.
type Config struct {
	// Listen is the API address, e.g. 127.0.0.1:8080 (":0" picks a free port).
	Listen string
	// DataDir holds embedded etcd's data.
	DataDir string
	// EtcdEndpoints selects an external etcd cluster instead of the embedded one.
	EtcdEndpoints []string
	Auth          auth.Config
	API           apiserver.Config
	Logger        *slog.Logger

	// Controllers run on the elected leader (controllers.go).
	Controllers ControllersConfig
}

// Validate reports a configuration that cannot work, naming the setting.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("listen address is empty (--listen)")
	}
	if len(c.EtcdEndpoints) == 0 && c.DataDir == "" {
		return errors.New("embedded etcd needs a data dir (--data-dir), or give --etcd-endpoints")
	}
	return nil
}

// ControlPlane is a running server.
type ControlPlane struct {
	Store     *etcd.Store
	Cache     *cache.Cache
	API       *apiserver.Server
	ln        net.Listener
	joinToken string
	http      *http.Server
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	log       *slog.Logger

	// Controllers run while this server leads (nil when disabled).
	Controllers *Controllers
}

// Start opens the store, fills the cache and starts serving.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	st, err := etcd.Open(ctx, etcd.Config{Endpoints: cfg.EtcdEndpoints, DataDir: cfg.DataDir, Logger: log.With("component", "etcd")})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	cp := &ControlPlane{Store: st, cancel: cancel, log: log}
	cp.Cache = cache.New(st, resource.Root, resource.Decode, log.With("component", "cache"))
	cp.wg.Add(1)
	go func() { defer cp.wg.Done(); cp.Cache.Run(runCtx) }()
	select {
	case <-cp.Cache.Ready():
	case <-time.After(60 * time.Second):
		cp.Close()
		return nil, errors.New("cache did not load from the store within 60s")
	case <-ctx.Done():
		cp.Close()
		return nil, ctx.Err()
	}
	verifier, err := auth.New(cfg.Auth)
	if err != nil {
		cp.Close()
		return nil, err
	}
	apiCfg := cfg.API
	apiCfg.Logger = log
	if apiCfg.JoinToken == "" && cfg.DataDir != "" {
		if apiCfg.JoinToken, err = loadOrCreateJoinToken(cfg.DataDir, log); err != nil {
			cp.Close()
			return nil, err
		}
	}
	if apiCfg.JoinToken == "" {
		log.Warn("no join token: agents cannot register (set --join-token)")
	}
	cp.joinToken = apiCfg.JoinToken
	cp.API, err = apiserver.New(apiCfg, st, cp.Cache, verifier)
	if err != nil {
		cp.Close()
		return nil, err
	}
	// Agents naming their cluster by name register in the server's default
	// account and region, where clients signing with unmapped keys also act.
	cp.API.SetAgentDefaultScope(resource.Scope{Account: orDefault(cfg.Auth.DefaultAccount, auth.DefaultAccount), Region: orDefault(cfg.Auth.DefaultRegion, auth.DefaultRegion)})
	cp.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		cp.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	cp.http = &http.Server{Handler: cp.API.Handler(), ReadHeaderTimeout: 10 * time.Second}
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		if err := cp.http.Serve(cp.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api listener stopped", "err", err)
		}
	}()
	if cfg.Controllers.StoppedTaskRetention == 0 {
		cfg.Controllers.StoppedTaskRetention = cfg.API.StoppedTaskRetention
	}
	if cfg.Controllers.SpotWarning == 0 {
		cfg.Controllers.SpotWarning = cfg.API.SpotWarning
	}
	cp.startControllers(runCtx, cfg.Controllers, log)
	log.Info("ecsd API serving", "addr", cp.ln.Addr().String(), "auth", cfg.Auth.Mode)
	return cp, nil
}

// Addr is the API listener's address.
func (cp *ControlPlane) Addr() string { return cp.ln.Addr().String() }

// URL is the API endpoint URL for clients.
func (cp *ControlPlane) URL() string { return "http://" + cp.Addr() }

// JoinToken is the token agents register with ("" when registration is off).
func (cp *ControlPlane) JoinToken() string { return cp.joinToken }

// Close disconnects the agents, stops serving, then the cache, then the store.
func (cp *ControlPlane) Close() error {
	if cp.API != nil {
		// Agent websockets are hijacked connections that http.Server.Shutdown
		// does not close: end them first, while the store can still record it.
		cp.API.CloseAgents(3 * time.Second)
	}
	if cp.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cp.http.Shutdown(ctx)
		cancel()
	}
	cp.cancel()
	cp.wg.Wait()
	if cp.Store != nil {
		return cp.Store.Close()
	}
	return nil
}
