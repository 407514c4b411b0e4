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
	// waits for capacity).
	InstanceID string `json:"instanceId,omitempty"`
	// Definition is the task definition as it was when the task was started, so
	// later deregistration or deletion never changes a running task.
	Definition ecs.TaskDefinition `json:"definition"`
	// Reserved is what the planner charged to the instance; Released records that
	// it was given back (exactly once, when the task stopped).
	Reserved Usage `json:"reserved"`
	Released bool  `json:"released,omitempty"`
	// ServiceName is set for tasks a service started.
	ServiceName string `json:"serviceName,omitempty"`
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
