package tmds

import "time"

// The types below are the task metadata endpoint's JSON, with the field names
// the ECS agent uses in its v4 responses (the v3 forms are derived from them in
// v3.go). The engine fills a Task; the handlers decide which parts each path
// shows.

// Task is a task as /v4/<id>/task shows it. TaskTags and ContainerInstanceTags
// appear only on /taskWithTags.
type Task struct {
	Cluster               string            `json:"Cluster"`
	TaskARN               string            `json:"TaskARN"`
	Family                string            `json:"Family"`
	Revision              string            `json:"Revision"`
	DesiredStatus         string            `json:"DesiredStatus,omitempty"`
	KnownStatus           string            `json:"KnownStatus"`
	Containers            []Container       `json:"Containers,omitempty"`
	Limits                *Limits           `json:"Limits,omitempty"`
	PullStartedAt         *time.Time        `json:"PullStartedAt,omitempty"`
	PullStoppedAt         *time.Time        `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt    *time.Time        `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone      string            `json:"AvailabilityZone,omitempty"`
	TaskTags              map[string]string `json:"TaskTags,omitempty"`
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags,omitempty"`
	LaunchType            string            `json:"LaunchType,omitempty"`
	VPCID                 string            `json:"VPCID,omitempty"`
	ServiceName           string            `json:"ServiceName,omitempty"`
	// CapacityProviderName is the capacity provider a Fargate task runs on
	// (FARGATE or FARGATE_SPOT): an ecsd addition, absent for other tasks.
	CapacityProviderName string `json:"CapacityProviderName,omitempty"`
	// FaultInjectionEnabled is always present in the agent's answer.
	FaultInjectionEnabled bool `json:"FaultInjectionEnabled"`
}

// Limits are CPU (task: vCPUs; container: CPU units) and memory (MiB).
type Limits struct {
	CPU    *float64 `json:"CPU,omitempty"`
	Memory *int64   `json:"Memory,omitempty"`
}

// Container is one container of a task, as /v4/<id> shows it.
type Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []Port            `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        Limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Networks      []Network         `json:"Networks,omitempty"`
	Health        *Health           `json:"Health,omitempty"`
	Volumes       []Volume          `json:"Volumes,omitempty"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
}

// Container types.
const (
	TypeNormal   = "NORMAL"
	TypeCNIPause = "CNI_PAUSE"
)

// PauseName is the name the pause container of an awsvpc task has in the
// metadata, as with the ECS agent.
const PauseName = "~internal~ecs~pause"

// Port is a published (or, in awsvpc and host mode, exposed) port.
type Port struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

// Network is one network of a container. The fields after IPv4Addresses are
// filled for awsvpc only.
type Network struct {
	NetworkMode              string   `json:"NetworkMode,omitempty"`
	IPv4Addresses            []string `json:"IPv4Addresses,omitempty"`
	AttachmentIndex          *int     `json:"AttachmentIndex,omitempty"`
	MACAddress               string   `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock,omitempty"`
	DomainNameServers        []string `json:"DomainNameServers,omitempty"`
	DomainNameSearchList     []string `json:"DomainNameSearchList,omitempty"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIPv4Address string   `json:"SubnetGatewayIpv4Address,omitempty"`
}

// Health is a container's health as Docker last reported it.
type Health struct {
	Status   string     `json:"status,omitempty"`
	Since    *time.Time `json:"statusSince,omitempty"`
	ExitCode int        `json:"exitCode,omitempty"`
	Output   string     `json:"output,omitempty"`
}

// Volume is a mount of a container.
type Volume struct {
	DockerName  string `json:"DockerName,omitempty"`
	Source      string `json:"Source,omitempty"`
	Destination string `json:"Destination,omitempty"`
}

// withoutTags returns t without the tag maps (for /task).
func (t Task) withoutTags() Task {
	t.TaskTags = nil
	t.ContainerInstanceTags = nil
	return t
}
