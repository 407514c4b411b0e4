package resource

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Task lastStatus values, in the only order a task moves through them.
var TaskStatusOrder = []string{
	"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING",
	"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED",
}

// TaskStatusRank is a status's position in TaskStatusOrder (-1 if unknown):
// statuses only move forward, so a report with a lower rank is stale.
func TaskStatusRank(s string) int {
	for i, v := range TaskStatusOrder {
		if v == s {
			return i
		}
	}
	return -1
}

// Stop codes ECS reports.
const (
	StopTaskFailedToStart         = "TaskFailedToStart"
	StopEssentialContainerExited  = "EssentialContainerExited"
	StopUserInitiated             = "UserInitiated"
	StopServiceSchedulerInitiated = "ServiceSchedulerInitiated"
	StopSpotInterruption          = "SpotInterruption"
	StopTerminationNotice         = "TerminationNotice"
)

// TaskKey is the key of a task record.
func (s Scope) TaskKey(cluster, id string) string { return s.Key(KindTask, cluster, id) }

// Task is a stored task: the wire view plus what the server needs to run it.
type Task struct {
	ecs.Task
	Scope   Scope  `json:"scope"`
	Cluster string `json:"cluster"`
	ID      string `json:"id"`
	// InstanceID is the container instance the task is placed on ("" while it
	// waits for capacity, in PROVISIONING).
	InstanceID string `json:"instanceId,omitempty"`
	// InstanceCluster is the cluster holding the instance record when it is not
	// the task's own: FargatePool for tasks on the managed Fargate pool.
	InstanceCluster string `json:"instanceCluster,omitempty"`
	// PlacementConstraints and PlacementStrategy are the call's (RunTask's or
	// the service's), kept so a task waiting for capacity is placed later by
	// the same rules.
	PlacementConstraints []ecs.PlacementConstraint `json:"placementConstraints,omitempty"`
	PlacementStrategy    []ecs.PlacementStrategy   `json:"placementStrategy,omitempty"`
	// StopTimeout, when set, replaces the containers' stop timeouts when the
	// agent stops the task (a Spot interruption's warning period).
	StopTimeout time.Duration `json:"stopTimeout,omitempty"`
	// Definition is the task definition as it was when the task was started, so
	// later deregistration or deletion never changes a running task.
	Definition ecs.TaskDefinition `json:"definition"`
	// Reserved is what the planner charged to the instance; Released records that
	// it was given back (exactly once, when the task stopped).
	Reserved Usage `json:"reserved"`
	Released bool  `json:"released,omitempty"`
	// ServiceName is set for tasks a service started.
	ServiceName string `json:"serviceName,omitempty"`
	// DeploymentID is the service deployment (ecs-svc/<id>) that started the
	// task; service and deployment counts are derived from it.
	DeploymentID string `json:"deploymentId,omitempty"`
	// ProtectionEnabled and ProtectedUntil are the task's scale-in protection
	// (UpdateTaskProtection): a service never picks a protected task to stop
	// when it scales in or replaces a deployment.
	ProtectionEnabled bool       `json:"protectionEnabled,omitempty"`
	ProtectedUntil    *time.Time `json:"protectedUntil,omitempty"`
	// ReferenceID is RunTask's/StartTask's referenceId (not on the wire Task).
	ReferenceID string `json:"referenceId,omitempty"`
	// NetworkConfiguration is the call's awsvpc configuration (awsvpc tasks
	// only); the agent reads the subnet and security groups from it.
	NetworkConfiguration *ecs.NetworkConfiguration `json:"networkConfiguration,omitempty"`
}

// InstanceKey is the key of the container instance the task is placed on
// ("" while unplaced).
func (t *Task) InstanceKey() string {
	if t.InstanceID == "" {
		return ""
	}
	cluster := t.Cluster
	if t.InstanceCluster != "" {
		cluster = t.InstanceCluster
	}
	return t.Scope.ContainerInstanceKey(cluster, t.InstanceID)
}

// Waiting reports whether the task waits for capacity: not yet placed and
// still wanted.
func (t *Task) Waiting() bool {
	return t.InstanceID == "" && t.LastStatus == "PROVISIONING" && t.DesiredStatus == "RUNNING"
}

// Protected reports whether scale-in protection holds at now.
func (t *Task) Protected(now time.Time) bool {
	return t.ProtectionEnabled && (t.ProtectedUntil == nil || now.Before(*t.ProtectedUntil))
}

func (t *Task) ClusterName() string { return t.Cluster }

func (t *Task) CountsAs() (Count, ecs.LaunchType) {
	switch t.LastStatus {
	case "RUNNING":
		return CountRunningTask, t.LaunchType
	case "PROVISIONING", "PENDING", "ACTIVATING":
		return CountPendingTask, t.LaunchType
	}
	return CountNone, t.LaunchType
}

// StoppedAtTime is when the task stopped (zero if it has not).
func (t *Task) StoppedAtTime() time.Time {
	if t.StoppedAt == nil {
		return time.Time{}
	}
	return t.StoppedAt.Time
}

func init() {
	RegisterKind(KindTask, func() any { return new(Task) })
}

func (t *Task) GetTags() []ecs.Tag  { return t.Tags }
func (t *Task) SetTags(v []ecs.Tag) { t.Tags = v }

func init() {
	// Long format only: task/<cluster>/<id> (a short ARN has no cluster to find it by).
	RegisterARNType("task", func(a ARN) (string, bool) {
		if len(a.Parts) != 2 || a.Parts[0] == "" || a.Parts[1] == "" {
			return "", false
		}
		return a.Scope.TaskKey(a.Parts[0], a.Parts[1]), true
	})
}

// ReferencesTaskDefinition reports whether the task still holds its task
// definition revision in use: until it is STOPPED, DeleteTaskDefinitions leaves
// the revision DELETE_IN_PROGRESS instead of removing it.
func (t *Task) ReferencesTaskDefinition(arn string) bool {
	return t.LastStatus != "STOPPED" && t.TaskDefinitionArn == arn
}

// EffectiveContainers is the task's container definitions with its container
// overrides applied, as the containers must run. It shares unchanged parts with
// the stored definition: callers must not mutate the result.
func (t *Task) EffectiveContainers() []ecs.ContainerDefinition {
	return ApplyContainerOverrides(t.Definition.ContainerDefinitions, t.Overrides)
}

// ApplyContainerOverrides applies RunTask/StartTask container overrides to
// container definitions: command, environmentFiles and resourceRequirements
// replace the definition's; environment is merged by name (the override wins,
// new names are appended); cpu, memory and memoryReservation replace the
// definition's when set. Overrides naming no container are ignored.
func ApplyContainerOverrides(defs []ecs.ContainerDefinition, o *ecs.TaskOverride) []ecs.ContainerDefinition {
	out := make([]ecs.ContainerDefinition, len(defs))
	copy(out, defs)
	if o == nil {
		return out
	}
	for _, co := range o.ContainerOverrides {
		for i := range out {
			c := &out[i]
			if c.Name != co.Name {
				continue
			}
			if co.Command != nil {
				c.Command = co.Command
			}
			if co.Environment != nil {
				c.Environment = mergeEnvironment(c.Environment, co.Environment)
			}
			if co.EnvironmentFiles != nil {
				c.EnvironmentFiles = co.EnvironmentFiles
			}
			if co.ResourceRequirements != nil {
				c.ResourceRequirements = co.ResourceRequirements
			}
			if co.Cpu != nil {
				c.Cpu = *co.Cpu
			}
			if co.Memory != nil {
				c.Memory = co.Memory
			}
			if co.MemoryReservation != nil {
				c.MemoryReservation = co.MemoryReservation
			}
		}
	}
	return out
}

func mergeEnvironment(base, over []ecs.KeyValuePair) []ecs.KeyValuePair {
	out := make([]ecs.KeyValuePair, 0, len(base)+len(over))
	out = append(out, base...)
	for _, kv := range over {
		replaced := false
		for i := range out {
			if out[i].Name == kv.Name {
				out[i].Value = kv.Value
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// SpotInterruptedReason is the stoppedReason of a Spot interruption.
const SpotInterruptedReason = "Your Spot Task was interrupted."

// Interrupt asks a FARGATE_SPOT task to stop for a Spot interruption: desired
// STOPPED with stop code SpotInterruption, and warning as the containers' stop
// timeout (SIGTERM now, SIGKILL once it has passed). It reports false when the
// task is already stopping.
func (t *Task) Interrupt(now time.Time, warning time.Duration) bool {
	if t.DesiredStatus == "STOPPED" || t.LastStatus == "STOPPED" {
		return false
	}
	t.DesiredStatus = "STOPPED"
	t.StopCode = ecs.TaskStopCode(StopSpotInterruption)
	t.StoppedReason = SpotInterruptedReason
	t.StoppingAt = ecs.NewTime(now)
	t.StopTimeout = warning
	t.Version++
	return true
}
