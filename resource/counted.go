package resource

import "github.com/ecsd/ecsd/api/ecs"

// Count is what a stored record contributes to its cluster's totals
// (DescribeClusters' counts and statistics, and DeleteCluster's refusal while
// the cluster still holds something). Counts are never stored on the cluster:
// they are derived from the records themselves, so they cannot drift.
type Count int

const (
	// CountNone: the record exists but counts for nothing now (a STOPPED task,
	// an INACTIVE service, a deregistered instance).
	CountNone Count = iota
	CountActiveService
	CountDrainingService
	CountRunningTask
	// CountPendingTask covers every state before RUNNING (PROVISIONING,
	// PENDING, ACTIVATING).
	CountPendingTask
	// CountRegisteredInstance covers ACTIVE and DRAINING container instances.
	CountRegisteredInstance
)

func (c Count) String() string {
	switch c {
	case CountNone:
		return "none"
	case CountActiveService:
		return "active service"
	case CountDrainingService:
		return "draining service"
	case CountRunningTask:
		return "running task"
	case CountPendingTask:
		return "pending task"
	case CountRegisteredInstance:
		return "registered instance"
	}
	return "unknown"
}

// ClusterMember is implemented by records stored under a cluster — services,
// tasks and container instances, at keys <kind>/<cluster>/<id> — so the API
// server can count them without knowing their types.
type ClusterMember interface {
	// ClusterName is the short name of the cluster the record belongs to.
	ClusterName() string
	// CountsAs says what the record counts as in its current state, and under
	// which launch type (statistics are split by launch type; "" for container
	// instances, and counted as EC2 for tasks and services).
	CountsAs() (Count, ecs.LaunchType)
}

// MemberKinds are the kinds whose records are counted into a cluster.
var MemberKinds = []string{KindService, KindTask, KindContainerInstance}
