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
	"github.com/spf13/pflag"

	"github.com/ecsd/ecsd/agent/node"
	"github.com/ecsd/ecsd/agent/tmds"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
	"github.com/ecsd/ecsd/internal/testimage"
)

func devCmd() *cobra.Command {
	var f serverFlags
	var af agentFlags
	var withAgent bool
	var pool devPoolFlags
	var pf provisionerFlags
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
			if !withAgent && !cmd.Flags().Changed("fargate-agent") {
				// --agent=false says there is no dockerd to use.
				pool.enabled = false
			}
			prov, closeProv, err := pf.build(cfg.DataDir, cfg.Logger)
			if err != nil {
				return err
			}
			wireNodeGroups(&cfg, prov, pf.serverURL)
			err = devServe(cfg, &f, &af, withAgent, &pool)
			closeProv() // after the control plane: node agents it started stop too
			return err
		},
	}
	f.register(cmd.Flags(), string(auth.Dev), "./ecsd-data")
	cmd.Flags().BoolVar(&withAgent, "agent", true, "run a local agent in the same process (needs dockerd)")
	af.register(cmd.Flags(), false, "agent-")
	pool.register(cmd.Flags())
	pf.register(cmd.Flags(), "local")
	return cmd
}

// devPoolFlags configure the in-process agent of the managed Fargate pool.
type devPoolFlags struct {
	enabled  bool
	runtime  string
	tmdsPort int
	cpu      int
	memory   int64
}

func (p *devPoolFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&p.enabled, "fargate-agent", true, "run an agent of the managed Fargate pool in the same process (FARGATE and FARGATE_SPOT tasks run on it; needs dockerd; off with --agent=false unless given)")
	fs.StringVar(&p.runtime, "fargate-runtime", node.RuntimeAuto, "how Fargate tasks' containers run: auto (gVisor when dockerd offers runsc, else runc), runsc or runc")
	fs.IntVar(&p.tmdsPort, "fargate-agent-tmds-port", 0, "port of the Fargate pool agent's task metadata endpoint (0: the local agent's --agent-tmds-port + 1)")
	fs.IntVar(&p.cpu, "fargate-agent-cpu", 4096, "CPU units the Fargate pool agent offers (virtual capacity)")
	fs.Int64Var(&p.memory, "fargate-agent-memory", 8192, "MiB of memory the Fargate pool agent offers (virtual capacity)")
}

// agentFlags is the pool agent's configuration: the local agent's, as a pool
// member with its own identity, metadata port and virtual capacity.
func (p *devPoolFlags) agentFlags(af *agentFlags, dataDir string) *agentFlags {
	pf := *af
	pf.fargate, pf.fargateRuntime = true, p.runtime
	pf.dataDir = filepath.Join(dataDir, "fargate-agent")
	pf.tmdsPort, pf.cpu, pf.memory = p.tmdsPort, p.cpu, p.memory
	if pf.tmdsPort == 0 {
		// Beside the local agent's endpoint on the same host.
		pf.tmdsPort = af.tmdsPort + 1
		if af.tmdsPort == 0 {
			pf.tmdsPort = tmds.DefaultPort + 1
		}
	}
	pf.instanceType, pf.attributes = "fargate", ""
	return &pf
}

// devServe runs the control plane and, beside it, an agent that joins over
// loopback with the server's join token, until SIGINT/SIGTERM.
func devServe(cfg controlplane.Config, f *serverFlags, af *agentFlags, withAgent bool, pool *devPoolFlags) error {
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
	var agentDone []chan error
	actx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	af.server, af.joinToken = cp.URL(), cp.JoinToken()
	var n, pn *node.Node
	if withAgent {
		af.dataDir = filepath.Join(cfg.DataDir, "agent")
		var err error
		if n, err = devAgent(ctx, af, log); err != nil {
			log.Warn("no local agent: tasks will find no container instance", "err", err)
			agentLine = "  (no local agent: " + err.Error() + ")"
		}
	}
	if pool.enabled {
		var err error
		plog := log.With("agent", "fargate-pool")
		if pn, err = devAgent(ctx, pool.agentFlags(af, cfg.DataDir), plog); err != nil {
			log.Warn("no Fargate pool agent: FARGATE tasks will wait for capacity", "err", err)
			agentLine += "\n  (no Fargate pool agent: " + err.Error() + ")"
		}
	} else {
		agentLine += "\n  (no Fargate pool agent: started with --fargate-agent=false)"
	}
	for _, a := range []*node.Node{n, pn} {
		if a == nil {
			continue
		}
		done := make(chan error, 1)
		agentDone = append(agentDone, done)
		go func() { done <- a.Run(actx) }()
	}
	if n != nil {
		agentLine = devWaitAgent(ctx, n, "local agent: container instance ")
	}
	if pn != nil {
		agentLine += "\n" + devWaitAgent(ctx, pn, "Fargate pool agent: instance ")
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

FARGATE and FARGATE_SPOT tasks (awsvpc, a Fargate cpu/memory pair) run on the Fargate pool agent:
  aws ecs run-task --endpoint-url %[1]s --launch-type FARGATE --task-definition <awsvpc family> \
    --network-configuration 'awsvpcConfiguration={subnets=[subnet-local]}'

Node groups grow and shrink with ecsd agent processes on this host (docs/capacity.md):
  ecsd nodegroup create web-nodes --cluster demo --max 3 --desired 1 --wait 2m --endpoint %[1]s

Wipe all state: curl -X POST %[1]s/ecsd/reset
`, cp.URL(), cfg.DataDir, f.region, agentLine, testimage.Busybox)

	<-ctx.Done()
	log.Info("shutting down")
	if len(agentDone) > 0 {
		// Stop the agents first (their containers keep running; a new agent re-attaches).
		stopAgent()
		deadline := time.After(10 * time.Second)
		for _, done := range agentDone {
			select {
			case <-done:
			case <-deadline:
				log.Warn("agent did not stop in time")
			}
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
func devWaitAgent(ctx context.Context, n *node.Node, what string) string {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s := n.Session(); s != nil && s.Connected() {
			return "  " + what + s.InstanceARN()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "  " + what + "starting (see the log)"
}
