package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecsd/ecsd/agent/node"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
	"github.com/ecsd/ecsd/internal/testimage"
)

func devCmd() *cobra.Command {
	var f serverFlags
	var af agentFlags
	var withAgent bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run ecsd all-in-one for local development: server, embedded etcd and a local agent (dev auth, reset endpoint)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := f.config(true)
			if err != nil {
				return err
			}
			return devServe(cfg, &f, &af, withAgent)
		},
	}
	f.register(cmd.Flags(), string(auth.Dev), "./ecsd-data")
	cmd.Flags().BoolVar(&withAgent, "agent", true, "run a local agent in the same process (needs dockerd)")
	af.register(cmd.Flags(), false, "agent-")
	return cmd
}

// devServe runs the control plane and, beside it, an agent that joins over
// loopback with the server's join token, until SIGINT/SIGTERM.
func devServe(cfg controlplane.Config, f *serverFlags, af *agentFlags, withAgent bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	cp, err := controlplane.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger
	agentLine := "  (no local agent: started with --agent=false)"
	var agentDone chan error
	actx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	if withAgent {
		af.server, af.joinToken, af.dataDir = cp.URL(), cp.JoinToken(), filepath.Join(cfg.DataDir, "agent")
		n, err := devAgent(ctx, af, log)
		if err != nil {
			log.Warn("no local agent: tasks will find no container instance", "err", err)
			agentLine = "  (no local agent: " + err.Error() + ")"
		} else {
			agentDone = make(chan error, 1)
			go func() { agentDone <- n.Run(actx) }()
			agentLine = devWaitAgent(ctx, n)
		}
	}
	fmt.Fprintf(os.Stderr, `
ecsd dev is running: ECS API at %[1]s (data in %[2]s)
%[4]s

  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=%[3]s
  aws ecs create-cluster --cluster-name demo --endpoint-url %[1]s
  aws ecs list-clusters --endpoint-url %[1]s

Run a task on the local agent (it joined the default cluster; the image is built locally):
  aws ecs register-task-definition --endpoint-url %[1]s --family demo --container-definitions \
    '[{"name":"web","image":"%[5]s","memory":64,"essential":true,"command":["httpd","-f","-v","-p","8080","-h","/etc"],"linuxParameters":{"initProcessEnabled":true},"portMappings":[{"containerPort":8080,"hostPort":0}]}]'
  aws ecs run-task --endpoint-url %[1]s --task-definition demo
  aws ecs list-tasks --endpoint-url %[1]s --query taskArns --output text
  aws ecs describe-tasks --endpoint-url %[1]s --tasks <arn> --query 'tasks[].containers[].networkBindings'

Wipe all state: curl -X POST %[1]s/ecsd/reset
`, cp.URL(), cfg.DataDir, f.region, agentLine, testimage.Busybox)

	<-ctx.Done()
	log.Info("shutting down")
	if agentDone != nil {
		// Stop the agent first (its containers keep running; a new agent re-attaches).
		stopAgent()
		select {
		case <-agentDone:
		case <-time.After(10 * time.Second):
			log.Warn("agent did not stop in time")
		}
	}
	return cp.Close()
}

// devAgent prepares the in-process agent: Docker must answer, and the demo
// image is built locally (nothing is pulled).
func devAgent(ctx context.Context, af *agentFlags, log *slog.Logger) (*node.Node, error) {
	ncfg, err := af.config(log)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ncfg.Runtime.Ping(pctx); err != nil {
		return nil, fmt.Errorf("dockerd is not answering (%v); start it (scripts/setup.sh does), or run with --agent=false", err)
	}
	if imp, ok := ncfg.Runtime.(testimage.Importer); ok {
		bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		ref, err := testimage.Ensure(bctx, imp)
		cancel()
		if err != nil {
			log.Warn("demo image not built", "image", testimage.Busybox, "err", err)
		} else {
			log.Info("demo image ready", "image", ref)
		}
	}
	return node.New(ncfg)
}

// devWaitAgent waits briefly for the agent to register and reports it.
func devWaitAgent(ctx context.Context, n *node.Node) string {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s := n.Session(); s != nil && s.Connected() {
			return "  local agent: container instance " + s.InstanceARN()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "  local agent: starting (see the log)"
}
