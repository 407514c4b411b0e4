// Package runtime is the agent's view of a container engine: plain domain types
// and the Runtime interface the task engine drives. It knows nothing of ECS and
// nothing of Docker's own types; agent/runtime/docker implements it on the
// Docker Engine API and is the only package that imports the Docker client.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// LabelManaged marks objects (networks, images) that ecsd created itself, so
// they can be found and cleaned up without touching anything else on the host.
const LabelManaged = "ecsd.managed"

// Runtime is what the task engine needs from a container engine. Every method
// bounds its own call with a named timeout; ctx can only shorten it.
type Runtime interface {
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
	// Info describes the engine and the machine it runs on.
	Info(ctx context.Context) (Info, error)

	// ImageExists reports whether ref is present locally.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// Pull fetches ref. A failure the daemon reports is a *PullError carrying
	// the daemon's message. auth may be nil.
	Pull(ctx context.Context, ref string, auth *RegistryAuth) error

	// Create creates (does not start) a container and returns its id. A name
	// already in use gives an error wrapping ErrConflict.
	Create(ctx context.Context, spec ContainerSpec) (string, error)
	// Start starts a created or stopped container.
	Start(ctx context.Context, id string) error
	// Stop sends the container's stop signal (SIGTERM), then SIGKILL once
	// timeout has passed. timeout 0 kills at once after the signal; a negative
	// timeout uses the container's own StopTimeout (or the daemon's default).
	// Stopping a container that is not running is not an error.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Kill sends signal ("SIGKILL", "TERM", "9", ...; "" means SIGKILL).
	Kill(ctx context.Context, id string, signal string) error
	// Remove deletes the container and its anonymous volumes; force kills a
	// running one first. Removing a container that does not exist is not an error.
	Remove(ctx context.Context, id string, force bool) error
	// Inspect returns the container's full state, or an error wrapping
	// ErrNotFound.
	Inspect(ctx context.Context, id string) (ContainerState, error)
	// List returns the containers carrying every label in labels (a value of
	// "" matches any value); all includes stopped ones. Only the fields the
	// engine's summary carries are filled: ID, Name, Image, ImageID, Labels,
	// Status, Running, Ports, Networks (IPv4/MAC/Gateway/PrefixLen), Created,
	// NetworkMode. Use Inspect for exit codes, times and health.
	List(ctx context.Context, labels map[string]string, all bool) ([]ContainerState, error)
	// Events streams container events (see EventAction*) of containers carrying
	// every label in labels, starting at since (zero: from now). The event
	// channel closes after the single error sent on the error channel (which
	// is ctx.Err() on cancellation). Reconnecting is the caller's job: call
	// Events again with since set to the last event's Time, and re-read state
	// with List/Inspect, because events can be lost while disconnected.
	Events(ctx context.Context, labels map[string]string, since time.Time) (<-chan Event, <-chan error)

	// EnsureNetwork creates a user-defined bridge network with subnetCIDR
	// labelled LabelManaged, or returns the existing one's id if a network
	// of that name already exists with that subnet (an existing network with
	// another subnet wraps ErrConflict).
	EnsureNetwork(ctx context.Context, name, subnetCIDR string) (string, error)
	// RemoveNetwork deletes a network; a missing one is not an error.
	RemoveNetwork(ctx context.Context, name string) error

	// Stats returns one sample of the engine's stats for a running container,
	// in the Docker stats JSON format (which the task metadata endpoint serves
	// as is). A one-shot sample has empty precpu_stats; the caller keeps the
	// previous sample if it needs CPU percentages.
	Stats(ctx context.Context, id string) (json.RawMessage, error)
}

// Errors the runtime classifies; match with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// PullError is a failed image pull, carrying the daemon's message. The engine
// reports it as "CannotPullContainerError: " + Message.
type PullError struct {
	Ref     string
	Message string
	Err     error // the underlying error, if any
}

func (e *PullError) Error() string {
	return fmt.Sprintf("pull %s: %s", e.Ref, e.Message)
}

func (e *PullError) Unwrap() error { return e.Err }

// RegistryAuth are credentials for a private registry.
type RegistryAuth struct {
	Username      string
	Password      string
	ServerAddress string
}

// Info describes the engine and its host.
type Info struct {
	Cores           int
	MemoryMiB       int64
	ServerVersion   string // e.g. "20.10.24+dfsg1"
	APIVersion      string // the engine's API version, e.g. "1.41"
	MinAPIVersion   string // the oldest API version it accepts, e.g. "1.12"
	OSType          string // "linux"
	Architecture    string // "x86_64"
	KernelVersion   string
	OperatingSystem string
	Hostname        string
	LogDrivers      []string // e.g. awslogs, json-file, none, ...
	Runtimes        []string // e.g. runc, runsc
	DefaultRuntime  string
	CgroupVersion   string
}

// ContainerSpec is everything needed to create a container.
type ContainerSpec struct {
	Name       string // "" lets the engine pick one
	Image      string
	Entrypoint []string // nil keeps the image's
	Command    []string // nil keeps the image's
	Env        []string // "K=V"
	WorkingDir string
	User       string
	Hostname   string
	Labels     map[string]string

	CPUShares            int64 // relative weight; 0 = engine default
	MemoryLimitMiB       int64 // hard limit; 0 = none
	MemoryReservationMiB int64 // soft limit; 0 = none
	Ulimits              []Ulimit

	Init           bool // run an init process as PID 1
	CapAdd         []string
	CapDrop        []string
	ReadonlyRootfs bool
	Privileged     bool

	ExtraHosts []string // "host:ip"
	DNSServers []string
	DNSSearch  []string

	// NetworkMode is "bridge", "host", "none", "container:<id>" or a network
	// name; "" means the engine's default (bridge), or Network.Name when
	// Network is set.
	NetworkMode  string
	Network      *NetworkAttachment
	PortBindings []PortBinding

	Mounts      []Mount
	VolumesFrom []string // container ids or names, ":ro" suffix allowed

	HealthCheck *HealthCheck
	StopTimeout time.Duration // 0 = engine default (10 s); whole seconds are used
	Runtime     string        // "" = engine default; e.g. "runsc"
	LogDriver   string        // "" = engine default
	LogOptions  map[string]string
}

// Ulimit is one resource limit.
type Ulimit struct {
	Name string // e.g. "nofile"
	Soft int64
	Hard int64
}

// NetworkAttachment connects a container to a user-defined network, optionally
// with a fixed address.
type NetworkAttachment struct {
	Name    string
	IPv4    string // "" lets the engine's IPAM pick
	Aliases []string
}

// PortBinding publishes a container port on the host. In ContainerState it is
// an actual binding, with the host port the engine assigned.
type PortBinding struct {
	ContainerPort int
	HostPort      int    // 0 = dynamic (the engine picks from its ephemeral range)
	Protocol      string // "tcp" (default) or "udp"
	HostIP        string // "" = all addresses
}

// Mount types.
const (
	MountBind   = "bind"   // Source is an absolute host path, created if missing
	MountVolume = "volume" // Source is a named volume ("" = anonymous), created if missing
	MountTmpfs  = "tmpfs"  // Source is unused
)

// Mount is a filesystem mount into the container.
type Mount struct {
	Type     string
	Source   string
	Target   string
	ReadOnly bool
}

// HealthCheck is the container's health probe. Test follows Docker's form:
// ["CMD", args...], ["CMD-SHELL", "command"] or ["NONE"].
type HealthCheck struct {
	Test        []string
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// Container statuses as the engine reports them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// Health statuses; "" means the container has no health check.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// ContainerState is what the engine knows about a container.
type ContainerState struct {
	ID          string
	Name        string // without the leading "/"
	Image       string // the reference it was created from
	ImageID     string // "sha256:..."
	Labels      map[string]string
	NetworkMode string
	Status      string // see Status*
	Running     bool
	ExitCode    int
	OOMKilled   bool
	Error       string // the engine's error starting the container, if any
	Pid         int
	Created     time.Time
	StartedAt   time.Time // zero if never started
	FinishedAt  time.Time // zero if never stopped
	Health      string    // see Health*; "" without a health check
	// HealthOutput is the output of the last health probe, for reasons.
	HealthOutput string
	Ports        []PortBinding          // actual host bindings, sorted
	Networks     map[string]NetworkInfo // by network name
}

// NetworkInfo is a container's address on one network.
type NetworkInfo struct {
	NetworkID string
	IPv4      string
	MAC       string
	Gateway   string
	PrefixLen int
	Aliases   []string
}

// Event actions delivered by Events.
const (
	EventCreate       = "create"
	EventStart        = "start"
	EventDie          = "die"
	EventOOM          = "oom"
	EventHealthStatus = "health_status" // Event.Health says which
	EventDestroy      = "destroy"
)

// Event is a container lifecycle event.
type Event struct {
	ContainerID string
	Action      string // see Event*
	Health      string // for EventHealthStatus: healthy or unhealthy
	ExitCode    int    // for EventDie
	Name        string
	Image       string
	// Labels are the container's labels (the engine's event attributes less
	// the ones it adds itself: name, image, exitCode, ...).
	Labels map[string]string
	Time   time.Time
}
