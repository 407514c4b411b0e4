// Package node assembles the agent of one machine: it reads the machine's
// capacity and the container runtime's facts, registers the machine as a
// container instance (package session), and runs the task engine (package
// engine) with the task metadata endpoint (package tmds) until stopped.
//
//	runtime.Info + /proc/meminfo ──▶ Registration ──▶ session ──Apply──▶ engine ──▶ runtime
//	                                                     ▲                  │
//	                                                     └────Report────────┘
//
// If the server no longer accepts the instance, the session registers the
// machine again under a new ARN and the node restarts the engine under the
// new identity. The old instance's containers are left running when it was
// deregistered (orphaned, as ECS documents), and removed when the server
// forgot it entirely (its state was wiped, e.g. by ecsd dev's reset), since
// nothing could ever manage them again.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/session"
	"github.com/ecsd/ecsd/agent/tmds"
	"github.com/ecsd/ecsd/internal/testimage"
	"github.com/ecsd/ecsd/resource"
)

// Config configures the agent, parsed once in cmd/ecsd.
type Config struct {
	ServerURL string
	Cluster   string
	JoinToken string
	// DataDir keeps the instance's identity (session.StateFile).
	DataDir string

	// Attributes are custom attributes (name → value, "" for none).
	Attributes       map[string]string
	AvailabilityZone string // "" → <region>a
	InstanceType     string
	// CPU (units) and MemoryMiB override the machine's capacity (virtual
	// capacity); 0 means measured.
	CPU       int
	MemoryMiB int64
	// ReservedMemoryMiB is kept back from the measured memory; negative means
	// the default (min(256 MiB, 5%)).
	ReservedMemoryMiB int64
	// TMDSPort is the task metadata endpoint's port (0: tmds.DefaultPort).
	TMDSPort int

	// Fargate joins the scope's managed Fargate pool instead of Cluster: the
	// instance serves the FARGATE tasks of every cluster and is listed in none.
	Fargate bool
	// FargateRuntime is how FARGATE tasks' containers run: RuntimeAuto
	// (gVisor when the daemon offers runsc, else runc), RuntimeRunsc or
	// RuntimeRunc ("" is RuntimeAuto).
	FargateRuntime string
	// External registers an EXTERNAL (ECS Anywhere-style) instance.
	External bool
	// NodeGroup and NodeID are set by a node group's provisioner for the
	// machines it starts.
	NodeGroup string
	NodeID    string

	// Runtime is the container runtime (agent/runtime/docker).
	Runtime runtime.Runtime
	// PauseImage is the awsvpc pause image; "" uses ecsd/pause:latest, built
	// locally when missing.
	PauseImage        string
	ImagePullBehavior string
	// AwslogsEndpoint is where containers with the awslogs log driver send
	// their logs (engine.Config.AwslogsEndpoint); "" logs them to json-file.
	AwslogsEndpoint string

	Version string
	Hash    string
	// HeartbeatInterval overrides the server's (tests).
	HeartbeatInterval time.Duration
	// Meminfo is the path of /proc/meminfo (tests).
	Meminfo string
	Logger  *slog.Logger
}

// Validate reports a configuration that cannot work, naming the flag.
func (c *Config) Validate() error {
	switch {
	case c.ServerURL == "":
		return errors.New("the server URL is required (--server)")
	case c.DataDir == "":
		return errors.New("a data directory is required (--data-dir)")
	case c.Runtime == nil:
		return errors.New("no container runtime")
	case c.CPU < 0 || c.MemoryMiB < 0:
		return errors.New("--cpu and --memory must not be negative")
	case c.Fargate && c.External:
		return errors.New("--fargate and --external are exclusive")
	case c.Fargate && c.NodeGroup != "":
		return errors.New("--fargate and --node-group are exclusive: the Fargate pool is not a node group")
	case c.NodeID != "" && c.NodeGroup == "":
		return errors.New("--node-id needs --node-group")
	}
	switch c.FargateRuntime {
	case "", RuntimeAuto, RuntimeRunsc, RuntimeRunc:
	default:
		return fmt.Errorf("--fargate-runtime %q: want %s, %s or %s", c.FargateRuntime, RuntimeAuto, RuntimeRunsc, RuntimeRunc)
	}
	if err := engine.CheckAwslogsEndpoint(c.AwslogsEndpoint); err != nil {
		return fmt.Errorf("--awslogs-endpoint: %w", err)
	}
	for k := range c.Attributes {
		if k == "" {
			return errors.New("--attributes: an attribute name is empty")
		}
	}
	return nil
}

// FargateRuntime values.
const (
	RuntimeAuto  = "auto"
	RuntimeRunsc = "runsc"
	RuntimeRunc  = "runc"
)

// Node is a configured agent.
type Node struct {
	cfg  Config
	log  *slog.Logger
	sess *session.Session
	// fargateRuntime is the runtime chosen for FARGATE tasks ("" = runc).
	fargateRuntime string
}

// New validates cfg.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Meminfo == "" {
		cfg.Meminfo = "/proc/meminfo"
	}
	if cfg.TMDSPort == 0 {
		cfg.TMDSPort = tmds.DefaultPort
	}
	if cfg.PauseImage == "" {
		cfg.PauseImage = testimage.Pause
	}
	return &Node{cfg: cfg, log: cfg.Logger.With("component", "node")}, nil
}

// Session is the node's session (nil before Run has registered).
func (n *Node) Session() *session.Session { return n.sess }

// Run registers the machine and runs the engine and the session until ctx
// ends. It returns an error only for what retrying cannot fix (no runtime, a
// refused join token).
func (n *Node) Run(ctx context.Context) error {
	info, err := n.runtimeInfo(ctx)
	if err != nil {
		return err
	}
	capacity, err := n.capacity(info)
	if err != nil {
		return err
	}
	if n.cfg.PauseImage == testimage.Pause {
		if imp, ok := n.cfg.Runtime.(testimage.Importer); ok {
			if _, err := testimage.EnsurePause(ctx, imp); err != nil {
				n.log.Warn("pause image unavailable: awsvpc tasks will fail to start", "image", n.cfg.PauseImage, "err", err)
			}
		}
	}
	n.fargateRuntime = n.chooseFargateRuntime(info)
	reg := Registration(&n.cfg, info, capacity)
	n.log.Info("machine", "cpu", capacity.CPU, "memory_mib", capacity.MemoryMiB, "docker", info.ServerVersion, "docker_api", info.APIVersion, "attributes", len(reg.Attributes))
	sess, err := session.New(session.Config{
		ServerURL: n.cfg.ServerURL, Cluster: n.cfg.Cluster, JoinToken: n.cfg.JoinToken, DataDir: n.cfg.DataDir,
		Registration: reg, AgentVersion: n.cfg.Version, HeartbeatInterval: n.cfg.HeartbeatInterval, Logger: n.cfg.Logger,
	})
	if err != nil {
		return err
	}
	n.sess = sess
	for {
		if err := sess.Register(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		err := n.runInstance(ctx, sess)
		var ni *session.NewInstanceError
		if errors.As(err, &ni) {
			if ni.Forgotten {
				// The server's state was wiped (e.g. ecsd dev's reset): nothing
				// will ever manage the old instance's containers again.
				n.log.Warn("the server forgot this instance; stopping its containers and running as a new one", "old", ni.Old, "instance", ni.New)
				go n.removeContainers(ni.Old)
			} else {
				// Deregistered: its tasks are orphaned and keep running, as in ECS.
				n.log.Warn("this instance was deregistered; its containers are left running, orphaned; running as a new instance", "old", ni.Old, "instance", ni.New)
			}
			continue
		}
		return err
	}
}

// runInstance runs the engine for the session's current instance and the
// session until ctx ends or the session re-registers.
func (n *Node) runInstance(ctx context.Context, sess *session.Session) error {
	region := ""
	if a, err := resource.ParseARN(sess.ClusterARN()); err == nil {
		region = a.Scope.Region
	}
	az := n.cfg.AvailabilityZone
	if az == "" && region != "" {
		az = region + "a" // what the server records for an instance that names no zone
	}
	md := tmds.New(tmds.Config{Port: n.cfg.TMDSPort, Logger: n.cfg.Logger.With("component", "tmds")})
	eng, err := engine.New(engine.Config{
		Runtime: n.cfg.Runtime, Reporter: sess,
		InstanceArn: sess.InstanceARN(), ClusterArn: sess.ClusterARN(), Region: region, AvailabilityZone: az,
		TMDS: md, PauseImage: n.cfg.PauseImage, ImagePullBehavior: n.cfg.ImagePullBehavior,
		FargateRuntime: n.fargateRuntime, AwslogsEndpoint: n.cfg.AwslogsEndpoint,
		Logger: n.cfg.Logger.With("component", "engine"),
	})
	if err != nil {
		return err
	}
	sess.SetApplier(eng)
	ectx, stop := context.WithCancel(ctx)
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(ectx) }()
	n.log.Info("agent running", "instance", sess.InstanceARN(), "cluster", sess.ClusterARN(), "server", n.cfg.ServerURL)

	sessDone := make(chan error, 1)
	go func() { sessDone <- sess.Run(ectx) }()
	var result error
	select {
	case result = <-sessDone:
		stop()
		if err := <-engDone; err != nil {
			n.log.Warn("engine stopped with an error", "err", err)
		}
	case err := <-engDone:
		// The engine cannot work (e.g. the runtime refused to re-attach): stop.
		stop()
		<-sessDone
		result = fmt.Errorf("engine: %w", err)
		if err == nil {
			result = ctx.Err()
		}
	}
	if ctx.Err() != nil && !errors.Is(result, session.ErrNewInstance) {
		n.log.Info("agent stopped", "instance", sess.InstanceARN())
		return nil
	}
	return result
}

// chooseFargateRuntime picks the runtime of FARGATE tasks' containers and
// says which ("" = the daemon's default, runc). Only pool agents run them.
func (n *Node) chooseFargateRuntime(info runtime.Info) string {
	if !n.cfg.Fargate {
		return ""
	}
	has := slices.Contains(info.Runtimes, RuntimeRunsc)
	switch n.cfg.FargateRuntime {
	case RuntimeRunc:
		n.log.Info("Fargate pool agent: tasks run with runc (--fargate-runtime runc)")
		return ""
	case RuntimeRunsc:
		if !has {
			n.log.Warn("Fargate pool agent: --fargate-runtime runsc, but dockerd offers no runtime runsc: tasks run with runc (register runsc with dockerd: scripts/setup.sh does)", "runtimes", info.Runtimes)
			return ""
		}
	default:
		if !has {
			n.log.Info("Fargate pool agent: tasks run with runc (dockerd offers no runtime runsc)", "runtimes", info.Runtimes)
			return ""
		}
	}
	n.log.Info("Fargate pool agent: tasks run under gVisor (runtime runsc), joined to a runc pause container's network")
	return RuntimeRunsc
}

// removeContainers stops and removes every container of an instance the
// server no longer knows.
func (n *Node) removeContainers(instanceArn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := n.cfg.Runtime.List(ctx, map[string]string{engine.LabelInstance: instanceArn}, true)
	if err != nil {
		n.log.Warn("containers of the forgotten instance not listed", "instance", instanceArn, "err", err)
		return
	}
	for _, c := range cs {
		if err := n.cfg.Runtime.Stop(ctx, c.ID, 10*time.Second); err != nil {
			n.log.Warn("container not stopped", "id", c.ID, "err", err)
		}
		if err := n.cfg.Runtime.Remove(ctx, c.ID, true); err != nil {
			n.log.Warn("container not removed", "id", c.ID, "err", err)
		}
	}
	if len(cs) > 0 {
		n.log.Info("containers of the forgotten instance removed", "instance", instanceArn, "count", len(cs))
	}
}

// runtimeInfo waits briefly for the container runtime (it may be starting
// beside the agent), then describes it.
func (n *Node) runtimeInfo(ctx context.Context) (runtime.Info, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := n.cfg.Runtime.Info(ctx)
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return runtime.Info{}, fmt.Errorf("container runtime: %w (is dockerd running?)", err)
		}
		n.log.Warn("container runtime not answering; retrying", "err", err)
		select {
		case <-ctx.Done():
			return runtime.Info{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) capacity(info runtime.Info) (Capacity, error) {
	c, err := MachineCapacity(n.cfg.Meminfo, n.cfg.ReservedMemoryMiB)
	if err != nil {
		if info.MemoryMiB <= 0 && n.cfg.MemoryMiB == 0 {
			return Capacity{}, err
		}
		n.log.Warn("using the runtime's view of memory", "err", err)
		c = Capacity{CPU: max(1, info.Cores) * 1024, MemoryMiB: info.MemoryMiB - min(DefaultReservedMemoryMiB, info.MemoryMiB/20)}
	}
	if n.cfg.CPU > 0 {
		c.CPU = n.cfg.CPU
	}
	if n.cfg.MemoryMiB > 0 {
		c.MemoryMiB = n.cfg.MemoryMiB
	}
	return c, nil
}

// ParseAttributes parses "k=v,k2=v2" (a name without "=" has no value).
func ParseAttributes(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("attribute %q has no name", kv)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}
