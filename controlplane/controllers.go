package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	capacityctl "github.com/ecsd/ecsd/controller/capacity"
	"github.com/ecsd/ecsd/controller/nodegroup"
	"github.com/ecsd/ecsd/controller/provisioning"
	"github.com/ecsd/ecsd/controller/runtime"
	servicectl "github.com/ecsd/ecsd/controller/service"
	"github.com/ecsd/ecsd/controller/taskgc"
	"github.com/ecsd/ecsd/planner"
)

// ControllersConfig configures the controllers (they run on the elected
// leader only; every server serves the API).
type ControllersConfig struct {
	// Disabled runs no controllers on this server (an API-only replica).
	Disabled bool
	// ID names this server in the leader election (default host:pid).
	ID string
	// LeaseTTL is how long a leader that stopped renewing keeps leading
	// (default 10s).
	LeaseTTL time.Duration
	// Service tunes the service scheduler.
	Service servicectl.Config
	// StoppedTaskRetention is how long STOPPED tasks stay describable before
	// the collector deletes them (default 1 h).
	StoppedTaskRetention time.Duration
	// CapacityWaitTimeout is how long a task may wait in PROVISIONING for
	// capacity (default 30 min); SpotWarning is an interrupted FARGATE_SPOT
	// task's stop timeout (default 2 min).
	CapacityWaitTimeout time.Duration
	SpotWarning         time.Duration
	// Capacity tunes managed scaling (Store, Cache and Logger are filled in).
	Capacity capacityctl.Config
	// NodeGroups tunes the node-group controller, which runs when
	// NodeGroups.Provisioner is set (Store, Cache, ServerURL, JoinToken and
	// Logger are filled in unless given).
	NodeGroups nodegroup.Config
}

// Controllers are the running controllers and their manager.
type Controllers struct {
	Manager *runtime.Manager
	Service *servicectl.Controller
}

// startControllers starts the controller manager: it campaigns in the etcd
// election and runs the controllers while this server leads.
func (cp *ControlPlane) startControllers(ctx context.Context, cfg ControllersConfig, log *slog.Logger) {
	if cfg.Disabled {
		return
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	sc := cfg.Service
	if sc.Logger == nil {
		sc.Logger = log
	}
	svc := servicectl.New(sc, cp.Store, cp.Cache, nil)
	elector := cp.Store.Elector("controllers", cfg.ID, cfg.LeaseTTL)
	var _ runtime.LeaderElector = elector
	ctrls := []runtime.Controller{svc}
	if pc, err := provisioning.New(provisioning.Config{
		Cache: cp.Cache, Planner: planner.New(cp.Store, cp.Cache), AgentTimeout: sc.AgentTimeout,
		WaitTimeout: cfg.CapacityWaitTimeout, SpotWarning: cfg.SpotWarning, Logger: log,
	}); err != nil {
		log.Error("provisioning controller not started", "err", err)
	} else {
		ctrls = append(ctrls, pc)
	}
	if gc, err := taskgc.New(taskgc.Config{Store: cp.Store, Cache: cp.Cache, Retention: cfg.StoppedTaskRetention, Logger: log}); err != nil {
		log.Error("task collector not started", "err", err)
	} else {
		ctrls = append(ctrls, gc)
	}
	cc := cfg.Capacity
	cc.Store, cc.Cache = cp.Store, cp.Cache
	if cc.Logger == nil {
		cc.Logger = log
	}
	if cc.AgentTimeout == 0 {
		cc.AgentTimeout = sc.AgentTimeout
	}
	if capc, err := capacityctl.New(cc); err != nil {
		log.Error("managed scaling not started", "err", err)
	} else {
		ctrls = append(ctrls, capc)
	}
	if ngc := cfg.NodeGroups; ngc.Provisioner != nil {
		ngc.Store, ngc.Cache = cp.Store, cp.Cache
		if ngc.ServerURL == "" {
			ngc.ServerURL = cp.URL()
		}
		if ngc.JoinToken == "" {
			ngc.JoinToken = cp.joinToken
		}
		if ngc.Logger == nil {
			ngc.Logger = log
		}
		if ng, err := nodegroup.New(ngc); err != nil {
			log.Error("node-group controller not started", "err", err)
		} else {
			ctrls = append(ctrls, ng)
		}
	}
	mgr := runtime.NewManager(elector, log, ctrls...)
	cp.Controllers = &Controllers{Manager: mgr, Service: svc}
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		mgr.Run(ctx)
	}()
}
