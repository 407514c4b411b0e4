package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ecsd/ecsd/agent"
	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/tmds"
)

// Defaults.
const (
	// DefaultAwsvpcNetwork is the user-defined bridge network awsvpc tasks get
	// their addresses on.
	DefaultAwsvpcNetwork = "ecsd-awsvpc"
	// DefaultAwsvpcSubnet is that network's subnet. It is chosen to be unlikely
	// to collide with anything: not Docker's default pools (172.17-31/16,
	// 192.168/20), not AWS's default VPC (172.31/16), not the common 10.0/16.
	DefaultAwsvpcSubnet = "10.213.0.0/16"
	// DefaultStopTimeout is ECS's default time between SIGTERM and SIGKILL.
	DefaultStopTimeout = 30 * time.Second
	// DefaultCleanupWait is how long a stopped task's containers are kept
	// (for logs and inspection) before they are removed, as ECS's
	// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION.
	DefaultCleanupWait = 3 * time.Hour
	// DefaultPausePoolSize is how many awsvpc pause containers are kept
	// created and running ahead of need.
	DefaultPausePoolSize = 2
)

// Image pull behaviours, as ECS_IMAGE_PULL_BEHAVIOR.
const (
	// PullPreferCached pulls only images that are not present (ecsd's default:
	// it is made for machines without a registry).
	PullPreferCached = "prefer-cached"
	// PullDefault pulls every time and falls back to a local copy on failure
	// (ECS's default).
	PullDefault = "default"
	// PullAlways pulls every time and fails the task when the pull fails.
	PullAlways = "always"
	// PullOnce pulls an image only if it is not present (as prefer-cached:
	// ecsd does not remove images).
	PullOnce = "once"
)

// Clock is the engine's source of time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures the engine.
type Config struct {
	Runtime  runtime.Runtime
	Reporter agent.Reporter

	InstanceArn      string
	ClusterArn       string
	Region           string
	AvailabilityZone string
	// InstanceTags are shown as ContainerInstanceTags by /taskWithTags.
	InstanceTags map[string]string

	// TMDS is the task metadata endpoint; the engine makes it listen on each
	// network's gateway when Run starts and closes it when Run returns. nil:
	// containers get no metadata endpoint.
	TMDS *tmds.Server
	// BridgeGateway is the address containers on Docker's default bridge
	// reach the host at; "" reads it from the docker0 interface.
	BridgeGateway string

	// PauseImage is the image of awsvpc pause containers; it must exist
	// locally or be pullable.
	PauseImage string
	// AwsvpcNetwork and AwsvpcSubnet name the network awsvpc tasks join.
	AwsvpcNetwork string
	AwsvpcSubnet  string
	// AwsvpcSubnetID is the subnet id reported in awsvpc attachments; ""
	// derives a stable one from the network's subnet.
	AwsvpcSubnetID string
	// PausePoolSize pause containers are kept ready; 0 means
	// DefaultPausePoolSize, negative disables the pool.
	PausePoolSize int

	// FargateRuntime is the OCI runtime the app containers of FARGATE tasks
	// run with (e.g. "runsc" for gVisor); "" is the daemon's default (runc).
	// The awsvpc pause container always runs with the default, and a
	// container that fails to start under FargateRuntime with a runtime error
	// is run with the default instead.
	FargateRuntime string

	// AwslogsEndpoint is given to containers with the awslogs log driver
	// whose options name no awslogs-endpoint (a CloudWatch Logs compatible
	// URL reachable from dockerd); "" runs them with json-file instead.
	AwslogsEndpoint string

	// ImagePullBehavior is one of the Pull* values; "" is PullPreferCached.
	ImagePullBehavior string
	// DefaultStopTimeout applies to containers without stopTimeout.
	DefaultStopTimeout time.Duration
	// CleanupWait is how long stopped tasks' containers are kept.
	CleanupWait time.Duration

	Clock  Clock
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.AwsvpcNetwork == "" {
		c.AwsvpcNetwork = DefaultAwsvpcNetwork
	}
	if c.AwsvpcSubnet == "" {
		c.AwsvpcSubnet = DefaultAwsvpcSubnet
	}
	if c.PausePoolSize == 0 {
		c.PausePoolSize = DefaultPausePoolSize
	}
	if c.PausePoolSize < 0 {
		c.PausePoolSize = 0
	}
	if c.ImagePullBehavior == "" {
		c.ImagePullBehavior = PullPreferCached
	}
	if c.DefaultStopTimeout <= 0 {
		c.DefaultStopTimeout = DefaultStopTimeout
	}
	if c.CleanupWait <= 0 {
		c.CleanupWait = DefaultCleanupWait
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first missing or malformed setting.
func (c *Config) Validate() error {
	switch {
	case c.Runtime == nil:
		return errors.New("engine: Runtime is required")
	case c.Reporter == nil:
		return errors.New("engine: Reporter is required")
	case c.InstanceArn == "":
		return errors.New("engine: InstanceArn is required")
	case c.PauseImage == "":
		return errors.New("engine: PauseImage is required")
	}
	p, err := netip.ParsePrefix(c.AwsvpcSubnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		return fmt.Errorf("engine: AwsvpcSubnet %q must be an IPv4 CIDR block of /28 or larger", c.AwsvpcSubnet)
	}
	if err := CheckAwslogsEndpoint(c.AwslogsEndpoint); err != nil {
		return fmt.Errorf("engine: AwslogsEndpoint: %w", err)
	}
	switch c.ImagePullBehavior {
	case PullPreferCached, PullDefault, PullAlways, PullOnce:
	default:
		return fmt.Errorf("engine: ImagePullBehavior %q is not one of %s, %s, %s, %s",
			c.ImagePullBehavior, PullPreferCached, PullDefault, PullAlways, PullOnce)
	}
	return nil
}
