package resource

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Container instance statuses as ECS reports them.
const (
	InstanceActive             = "ACTIVE"
	InstanceDraining           = "DRAINING"
	InstanceRegistering        = "REGISTERING"
	InstanceDeregistering      = "DEREGISTERING"
	InstanceInactive           = "INACTIVE"
	InstanceRegistrationFailed = "REGISTRATION_FAILED"
)

// FargatePool is the reserved cluster name under which the agents of the
// managed Fargate pool register (not a valid ECS cluster name, so it cannot
// collide with one): they serve the Fargate tasks of every cluster in the
// scope and are never listed as any cluster's container instances.
const FargatePool = "~fargate"

// KindPresence holds agent heartbeats, apart from the instance record so that a
// heartbeat never races the planner's compare-and-swap on the instance.
const KindPresence = "presence"

// ContainerInstanceKey is the key of a container instance record.
func (s Scope) ContainerInstanceKey(cluster, id string) string {
	return s.Key(KindContainerInstance, cluster, id)
}

// PresenceKey is the key of an instance's agent heartbeat.
func (s Scope) PresenceKey(cluster, id string) string { return s.Key(KindPresence, cluster, id) }

// Usage is what tasks hold on an instance. The planner is its only writer.
type Usage struct {
	CPU      int64   `json:"cpu,omitempty"`
	Memory   int64   `json:"memory,omitempty"`
	TCPPorts []int32 `json:"tcpPorts,omitempty"`
	UDPPorts []int32 `json:"udpPorts,omitempty"`
}

// ContainerInstance is a stored container instance. The wire view's
// remainingResources, runningTasksCount, pendingTasksCount and agentConnected are
// derived on read (from Used, the tasks and the presence record), not stored.
type ContainerInstance struct {
	ecs.ContainerInstance
	Scope   Scope  `json:"scope"`
	Cluster string `json:"cluster"`
	ID      string `json:"id"`
	// SecretHash is the SHA-256 (hex) of the agent's instance credential; empty
	// for instances registered by a client through the API.
	SecretHash string `json:"secretHash,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	Fargate    bool   `json:"fargate,omitempty"`
	External   bool   `json:"external,omitempty"`
	// NodeGroup and NodeID link an instance a node group launched to its node.
	NodeGroup string `json:"nodeGroup,omitempty"`
	NodeID    string `json:"nodeId,omitempty"`
	// Used is what placed, not yet stopped tasks hold.
	Used Usage `json:"used"`
	// DeregisteredAt is set when the instance went INACTIVE; collected later.
	DeregisteredAt *time.Time `json:"deregisteredAt,omitempty"`
}

func (ci *ContainerInstance) ClusterName() string { return ci.Cluster }

func (ci *ContainerInstance) CountsAs() (Count, ecs.LaunchType) {
	switch ci.Status {
	case InstanceActive, InstanceDraining:
		return CountRegisteredInstance, ""
	}
	return CountNone, ""
}

// Presence is an agent's last heartbeat as seen by the server holding its connection.
type Presence struct {
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	Server        string    `json:"server,omitempty"`
	Connected     bool      `json:"connected"`
}

// Connected reports whether the agent counts as connected at now: it is attached
// and has been heard from within timeout.
func (p *Presence) Alive(now time.Time, timeout time.Duration) bool {
	return p != nil && p.Connected && now.Sub(p.LastHeartbeat) < timeout
}

func init() {
	RegisterKind(KindContainerInstance, func() any { return new(ContainerInstance) })
	RegisterKind(KindPresence, func() any { return new(Presence) })
}

func (ci *ContainerInstance) GetTags() []ecs.Tag  { return ci.Tags }
func (ci *ContainerInstance) SetTags(v []ecs.Tag) { ci.Tags = v }

func init() {
	RegisterARNType("container-instance", func(a ARN) (string, bool) {
		if len(a.Parts) != 2 || a.Parts[0] == "" || a.Parts[1] == "" {
			return "", false
		}
		return a.Scope.ContainerInstanceKey(a.Parts[0], a.Parts[1]), true
	})
}
