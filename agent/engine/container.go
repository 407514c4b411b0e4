package engine

import (
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/api/ecs"
)

// Container health statuses as ECS reports them.
const (
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
	HealthUnknown   = "UNKNOWN"
)

// Reasons ECS gives for containers that failed.
const (
	reasonOOM          = "OutOfMemoryError: Container killed due to memory usage"
	reasonCannotPull   = "CannotPullContainerError: "
	reasonCannotCreate = "CannotCreateContainerError: "
	reasonCannotStart  = "CannotStartContainerError: "
	reasonEssential    = "Essential container in task exited"
)

// container is the engine's record of one container of a task. It belongs to
// the task's goroutine; nothing else reads or writes it.
type container struct {
	name       string
	def        ecs.ContainerDefinition // with the task's overrides applied
	haveDef    bool                    // false for a re-attached container whose task has not been assigned yet
	essential  bool
	stopAfter  time.Duration // SIGTERM → SIGKILL
	token      string        // metadata endpoint token ("" for the pause container)
	dockerName string
	pause      bool

	id      string // Docker id, "" until created
	started bool   // has been started at least once
	running bool
	exited  bool
	stopped bool // the engine stopped it (so its exit is not a failure)
	removed bool

	exitCode     *int32
	oom          bool
	reason       string
	hasHealth    bool
	health       string // HEALTHY, UNHEALTHY, UNKNOWN
	healthSince  time.Time
	healthOutput string

	image      string
	imageID    string
	createdAt  time.Time
	startedAt  time.Time
	finishedAt time.Time
	ports      []runtime.PortBinding // actual host bindings
	ipv4       string                // address on its network (bridge/awsvpc)
	mac        string
	gateway    string
	prefixLen  int
	mounts     []runtime.Mount
	labels     map[string]string
}

// lastStatus is the container's status as ECS reports it.
func (c *container) lastStatus() string {
	switch {
	case c.exited:
		return StatusStopped
	case c.running:
		return StatusRunning
	default:
		return StatusPending
	}
}

// observe records what an inspection shows. It returns true the first time
// it sees the container exited.
func (c *container) observe(st runtime.ContainerState) (died bool) {
	c.id = st.ID
	if st.ImageID != "" {
		c.imageID = st.ImageID
	}
	if st.Labels != nil {
		c.labels = st.Labels
	}
	if st.Image != "" && c.image == "" {
		c.image = st.Image
	}
	if !st.Created.IsZero() {
		c.createdAt = st.Created
	}
	if !st.StartedAt.IsZero() {
		c.started = true
		c.startedAt = st.StartedAt
	}
	wasExited := c.exited
	c.running = st.Running
	if len(st.Ports) > 0 || st.Running {
		c.ports = st.Ports
	}
	for _, n := range st.Networks {
		if n.IPv4 != "" {
			c.ipv4, c.mac, c.gateway, c.prefixLen = n.IPv4, n.MAC, n.Gateway, n.PrefixLen
		}
	}
	if st.Health != "" {
		c.setHealth(st.Health, time.Time{})
		if st.HealthOutput != "" {
			c.healthOutput = st.HealthOutput
		}
	}
	if !st.Running && c.started && (st.Status == runtime.StatusExited || st.Status == runtime.StatusDead) {
		c.exited = true
		code := int32(st.ExitCode)
		c.exitCode = &code
		c.finishedAt = st.FinishedAt
		if st.OOMKilled {
			c.oom = true
		}
		if c.oom && c.reason == "" {
			c.reason = reasonOOM
		}
		return !wasExited
	}
	return false
}

// setHealth maps Docker's health status; since is when it changed (zero: now
// unknown, keep the previous time if the status did not change).
func (c *container) setHealth(dockerHealth string, since time.Time) {
	h := HealthUnknown
	switch dockerHealth {
	case runtime.HealthHealthy:
		h = HealthHealthy
	case runtime.HealthUnhealthy:
		h = HealthUnhealthy
	}
	if h != c.health {
		c.health = h
		c.healthSince = since
	}
}
