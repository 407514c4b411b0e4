package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ecsd/ecsd/agent/node"
	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/agent/tmds"
)

// agentFlags are the agent's settings; each has an ECSD_* environment
// equivalent (flag --join-token ↔ ECSD_JOIN_TOKEN).
type agentFlags struct {
	server            string
	cluster           string
	joinToken         string
	dataDir           string
	attributes        string
	availabilityZone  string
	instanceType      string
	cpu               int
	memory            int64
	reservedMemory    int64
	tmdsPort          int
	dockerHost        string
	pauseImage        string
	imagePullBehavior string
	awslogsEndpoint   string
	logLevel          string
	logFormat         string
	fargate           bool
	fargateRuntime    string
	external          bool
	nodeGroup         string
	nodeID            string
}

// register adds the flags; withServer is false for `ecsd dev`, whose agent
// talks to its own in-process server.
func (f *agentFlags) register(fs *pflag.FlagSet, withServer bool, prefix string) {
	if withServer {
		fs.StringVar(&f.server, "server", "http://127.0.0.1:8080", "the ecsd server's URL")
		fs.StringVar(&f.cluster, "cluster", "", "cluster name or ARN to join (empty: default)")
		fs.StringVar(&f.joinToken, "join-token", "", "the server's join token (see <server data dir>/join-token); only needed the first time")
		fs.StringVar(&f.dataDir, "data-dir", "./ecsd-agent", "where the agent keeps its instance identity")
		fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
		fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
		fs.BoolVar(&f.fargate, "fargate", false, "join the managed Fargate pool: run the FARGATE tasks of every cluster (--cluster then only picks the account and region, when it is an ARN)")
		fs.StringVar(&f.fargateRuntime, "fargate-runtime", node.RuntimeAuto, "how Fargate tasks' containers run: auto (gVisor when dockerd offers the runtime runsc, else runc), runsc or runc")
		fs.BoolVar(&f.external, "external", false, "register as an EXTERNAL instance (ECS Anywhere style: attribute ecs.capability.external; takes only EXTERNAL tasks)")
		fs.StringVar(&f.nodeGroup, "node-group", "", "the node group this machine belongs to (set by the group's provisioner)")
		fs.StringVar(&f.nodeID, "node-id", "", "the node id within --node-group (set by the group's provisioner)")
	}
	fs.StringVar(&f.attributes, prefix+"attributes", "", "custom attributes, name=value,name2=value2")
	fs.StringVar(&f.availabilityZone, prefix+"availability-zone", "", "availability zone reported (empty: <region>a)")
	fs.StringVar(&f.instanceType, prefix+"instance-type", "ecsd.local", "instance type reported")
	fs.IntVar(&f.cpu, prefix+"cpu", 0, "CPU units to offer (0: cores×1024)")
	fs.Int64Var(&f.memory, prefix+"memory", 0, "memory in MiB to offer (0: the machine's, less a reserve)")
	fs.Int64Var(&f.reservedMemory, prefix+"reserved-memory", -1, "MiB of the machine's memory kept for the host (-1: min(256, 5%))")
	fs.IntVar(&f.tmdsPort, prefix+"tmds-port", tmds.DefaultPort, "port of the task metadata endpoint")
	fs.StringVar(&f.dockerHost, prefix+"docker-host", "", "Docker daemon address (empty: DOCKER_HOST or the default socket)")
	fs.StringVar(&f.pauseImage, prefix+"pause-image", "", "awsvpc pause image (empty: ecsd/pause:latest, built locally)")
	fs.StringVar(&f.imagePullBehavior, prefix+"image-pull-behavior", "", "prefer-cached (default), default, always or once")
	fs.StringVar(&f.awslogsEndpoint, prefix+"awslogs-endpoint", "", "CloudWatch Logs compatible URL for containers with the awslogs log driver (empty: they log to json-file)")
}

// config builds the node configuration; the caller sets Logger, and for
// `ecsd dev` the server, token and data dir.
func (f *agentFlags) config(log *slog.Logger) (node.Config, error) {
	attrs, err := node.ParseAttributes(f.attributes)
	if err != nil {
		return node.Config{}, fmt.Errorf("--attributes: %w", err)
	}
	rt, err := docker.New(docker.Config{Host: f.dockerHost})
	if err != nil {
		return node.Config{}, fmt.Errorf("docker: %w", err)
	}
	dataDir := f.dataDir
	if dataDir != "" {
		if abs, err := filepath.Abs(dataDir); err == nil {
			dataDir = abs
		}
	}
	return node.Config{
		ServerURL: f.server, Cluster: f.cluster, JoinToken: f.joinToken, DataDir: dataDir,
		Attributes: attrs, AvailabilityZone: f.availabilityZone, InstanceType: f.instanceType,
		CPU: f.cpu, MemoryMiB: f.memory, ReservedMemoryMiB: f.reservedMemory, TMDSPort: f.tmdsPort,
		Runtime: rt, PauseImage: f.pauseImage, ImagePullBehavior: f.imagePullBehavior, AwslogsEndpoint: f.awslogsEndpoint,
		Fargate: f.fargate, FargateRuntime: f.fargateRuntime, External: f.external, NodeGroup: f.nodeGroup, NodeID: f.nodeID,
		Version: version, Hash: agentHash(), Logger: log,
	}, nil
}

// agentHash is the build's VCS revision when the binary carries one.
func agentHash() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// agentMemoryTarget is the agent's soft Go memory limit (see debug.SetMemoryLimit).
const agentMemoryTarget = 24 << 20

func agentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the ecsd agent: register this machine as a container instance and run its tasks on Docker",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fromEnv(cmd.Flags()); err != nil {
				return err
			}
			// The agent shares its machine with the tasks: unless the operator set
			// GOMEMLIMIT, ask the Go runtime to collect harder past agentMemoryTarget
			// rather than let the heap grow with bursts of task reports.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(agentMemoryTarget)
			}
			log, err := (&serverFlags{logLevel: f.logLevel, logFormat: f.logFormat}).logger()
			if err != nil {
				return err
			}
			cfg, err := f.config(log)
			if err != nil {
				return err
			}
			n, err := node.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return n.Run(ctx)
		},
	}
	f.register(cmd.Flags(), true, "")
	return cmd
}
