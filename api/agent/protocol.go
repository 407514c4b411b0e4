// Package agent is the protocol between the ecsd server and its agents, shared by
// both sides. It imports only the ECS wire types.
//
//	agent                                  server
//	  │ POST /agent/v1/register (join token) │  → container instance ARN + instance credential
//	  │ GET  /agent/v1/connect  (websocket)  │  authenticated with the instance credential
//	  │ ◀── Tasks{Full: true, ...}           │  every task assigned to the instance, on connect
//	  │ ◀── Tasks{...}                       │  pushed as soon as a task's desired state changes
//	  │ ── StateChange{Seq: n, ...} ──▶      │  in order; the server answers Ack{Seq: n}
//	  │ ── Heartbeat ──▶                     │  every HeartbeatInterval
//
// Assignments are level-triggered: each Task carries the whole desired state, so a
// lost or repeated message is harmless and a reconnect starts with the full set.
// State changes carry a per-agent sequence number; the agent resends everything
// not acknowledged after a reconnect, and the server ignores what it already has
// (a task's status only moves forward).
package agent

import (
	"encoding/json"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Paths of the agent endpoints on the server's API listener.
const (
	RegisterPath = "/agent/v1/register"
	ConnectPath  = "/agent/v1/connect"
)

// AuthScheme prefixes the Authorization header of agent calls:
// "ECSD-Instance <container instance ARN>:<secret>".
const AuthScheme = "ECSD-Instance"

// RegisterRequest registers (or re-registers) a machine as a container instance.
type RegisterRequest struct {
	// Cluster name or ARN; "" means default.
	Cluster string `json:"cluster"`
	// JoinToken proves the agent may join; required for a new registration.
	JoinToken string `json:"joinToken,omitempty"`
	// ContainerInstanceArn and Secret, when set, resume an existing registration.
	ContainerInstanceArn string `json:"containerInstanceArn,omitempty"`
	Secret               string `json:"secret,omitempty"`

	Hostname            string          `json:"hostname"`
	TotalResources      []ecs.Resource  `json:"totalResources"`
	Attributes          []ecs.Attribute `json:"attributes"`
	VersionInfo         ecs.VersionInfo `json:"versionInfo"`
	AvailabilityZone    string          `json:"availabilityZone"`
	InstanceType        string          `json:"instanceType"`
	Fargate             bool            `json:"fargate,omitempty"`
	External            bool            `json:"external,omitempty"`
	CapacityProviderTag string          `json:"capacityProvider,omitempty"`
	// NodeGroup and NodeID identify a machine a node group's provisioner
	// started (ecsd agent --node-group --node-id).
	NodeGroup string `json:"nodeGroup,omitempty"`
	NodeID    string `json:"nodeId,omitempty"`
	// Account and Region select the scope a new instance registers in when
	// Cluster is a name rather than an ARN; "" means the server's defaults.
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Tags are set on a new container instance.
	Tags []ecs.Tag `json:"tags,omitempty"`
}

// RegisterResponse is the instance identity the agent keeps in its state file.
type RegisterResponse struct {
	ContainerInstanceArn string        `json:"containerInstanceArn"`
	Secret               string        `json:"secret"`
	ClusterArn           string        `json:"clusterArn"`
	HeartbeatInterval    time.Duration `json:"heartbeatInterval"`
}

// ErrorResponse is the body of a failed agent HTTP call.
type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of ErrorResponse. An agent holding a stored registration that
// gets ErrUnknownInstance, ErrInactiveInstance or ErrInvalidCredential
// registers anew with its join token; ErrInvalidJoinToken and
// ErrRegistrationDisabled need an operator.
const (
	ErrBadRequest           = "BadRequest"                // 400: the request is malformed
	ErrClusterNotFound      = "ClusterNotFound"           // 404: the named cluster does not exist (only "default" is created on demand)
	ErrInvalidJoinToken     = "InvalidJoinToken"          // 401: the join token is missing or wrong
	ErrRegistrationDisabled = "RegistrationDisabled"      // 403: the server has no join token configured
	ErrInvalidCredential    = "InvalidInstanceCredential" // 401: the instance secret does not match
	ErrUnknownInstance      = "UnknownInstance"           // 404: no such container instance (e.g. the server's state was wiped)
	ErrInactiveInstance     = "InactiveInstance"          // 410: the instance was deregistered
	ErrServer               = "ServerError"               // 500: retry later
)

// Message types on the websocket.
const (
	TypeTasks       = "tasks"
	TypeStateChange = "stateChange"
	TypeAck         = "ack"
	TypeHeartbeat   = "heartbeat"
	TypeHello       = "hello"
)

// Envelope is every websocket message.
type Envelope struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Hello is the agent's first message after connecting: the sequence number of the
// last state change the server acknowledged to it.
type Hello struct {
	AgentVersion string `json:"agentVersion"`
	LastAcked    uint64 `json:"lastAcked"`
}

// Tasks carries desired state. Full means: these are all the tasks of the
// instance; any task the agent runs that is not listed must be stopped.
type Tasks struct {
	Full  bool             `json:"full"`
	Tasks []TaskAssignment `json:"tasks"`
}

// TaskAssignment is one task's desired state, self-contained so the agent never
// needs to ask for more.
type TaskAssignment struct {
	TaskArn        string             `json:"taskArn"`
	ClusterArn     string             `json:"clusterArn"`
	DesiredStatus  string             `json:"desiredStatus"`
	Definition     ecs.TaskDefinition `json:"definition"`
	Overrides      *ecs.TaskOverride  `json:"overrides,omitempty"`
	Group          string             `json:"group,omitempty"`
	StartedBy      string             `json:"startedBy,omitempty"`
	LaunchType     string             `json:"launchType,omitempty"`
	Tags           []ecs.Tag          `json:"tags,omitempty"`
	AZ             string             `json:"availabilityZone,omitempty"`
	CreatedAt      time.Time          `json:"createdAt"`
	StopCode       string             `json:"stopCode,omitempty"`
	StoppedReason  string             `json:"stoppedReason,omitempty"`
	ServiceName    string             `json:"serviceName,omitempty"`
	PlatformFamily string             `json:"platformFamily,omitempty"`
	// Cpu and Memory are the task-level sizes after overrides ("" when the
	// definition sets none).
	Cpu    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
	// Containers are the task's containers as the server created them (names
	// and container ARNs), Attachments its network attachments (awsvpc).
	Containers           []ecs.Container  `json:"containers,omitempty"`
	Attachments          []ecs.Attachment `json:"attachments,omitempty"`
	EnableExecuteCommand bool             `json:"enableExecuteCommand,omitempty"`
	// StopTimeout, when non-zero, replaces the containers' stop timeouts when
	// the task is stopped (the warning period of a Spot interruption).
	StopTimeout time.Duration `json:"stopTimeout,omitempty"`
	// CapacityProviderName and PlatformVersion are reported in metadata.
	CapacityProviderName string `json:"capacityProviderName,omitempty"`
	PlatformVersion      string `json:"platformVersion,omitempty"`
	// Version is the task record's store revision; the agent ignores an
	// assignment older than one it has already seen.
	Version int64 `json:"version"`
}

// StateChange reports a task's progress. It is cumulative: it carries the task's
// whole known state, so applying the latest one is enough.
type StateChange struct {
	Seq     uint64 `json:"seq"`
	TaskArn string `json:"taskArn"`
	// Status is the task's new lastStatus (PENDING, ACTIVATING, RUNNING,
	// DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED).
	Status             string           `json:"status"`
	HealthStatus       string           `json:"healthStatus,omitempty"`
	StopCode           string           `json:"stopCode,omitempty"`
	StoppedReason      string           `json:"stoppedReason,omitempty"`
	PullStartedAt      *time.Time       `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *time.Time       `json:"pullStoppedAt,omitempty"`
	StartedAt          *time.Time       `json:"startedAt,omitempty"`
	ExecutionStoppedAt *time.Time       `json:"executionStoppedAt,omitempty"`
	Containers         []ContainerState `json:"containers"`
	Attachments        []ecs.Attachment `json:"attachments,omitempty"`
	Connectivity       string           `json:"connectivity,omitempty"`
	ConnectivityAt     *time.Time       `json:"connectivityAt,omitempty"`
	At                 time.Time        `json:"at"`
}

// ContainerState is one container's known state within a StateChange.
type ContainerState struct {
	Name              string                 `json:"name"`
	RuntimeID         string                 `json:"runtimeId,omitempty"`
	ImageDigest       string                 `json:"imageDigest,omitempty"`
	LastStatus        string                 `json:"lastStatus"`
	ExitCode          *int32                 `json:"exitCode,omitempty"`
	Reason            string                 `json:"reason,omitempty"`
	HealthStatus      string                 `json:"healthStatus,omitempty"`
	NetworkBindings   []ecs.NetworkBinding   `json:"networkBindings,omitempty"`
	NetworkInterfaces []ecs.NetworkInterface `json:"networkInterfaces,omitempty"`
}

// Ack acknowledges every state change up to and including Seq.
type Ack struct {
	Seq uint64 `json:"seq"`
	// Error is set when the change was rejected (malformed or out of order); the
	// agent logs it and does not resend that change.
	Error string `json:"error,omitempty"`
}

// Heartbeat keeps agentConnected true.
type Heartbeat struct {
	At time.Time `json:"at"`
}
