package apiserver

import (
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
)

// Tasks: RunTask and StartTask (tasks_run.go, tasks_launch.go), StopTask
// (tasks_stop.go), DescribeTasks (tasks_describe.go), ListTasks
// (tasks_list.go), and the state changes agents report (taskstate.go,
// taskstate_submit.go).
//
// A task record (resource.Task) embeds its wire view, kept current on every
// write: DescribeTasks answers from it directly. Placement and every status
// change go through the planner, which charges a placed task's resources to
// its container instance in the same transaction that creates the task and
// gives them back, exactly once, in the transaction that makes it STOPPED.

// Task statuses the server itself writes.
const (
	taskStatusProvisioning = "PROVISIONING"
	taskStatusPending      = "PENDING"
	taskStatusRunning      = "RUNNING"
	taskStatusStopped      = "STOPPED"

	containerStatusPending = "PENDING"
	containerStatusRunning = "RUNNING"
	containerStatusStopped = "STOPPED"
)

func (s *Server) registerTasks() {
	s.ops[ecs.OpRunTask] = op(s.runTask)
	s.ops[ecs.OpStartTask] = op(s.startTask)
	s.ops[ecs.OpStopTask] = op(s.stopTask)
	s.ops[ecs.OpDescribeTasks] = op(s.describeTasks)
	s.ops[ecs.OpListTasks] = op(s.listTasks)
	s.ops[ecs.OpSubmitTaskStateChange] = op(s.submitTaskStateChange)
	s.ops[ecs.OpSubmitContainerStateChange] = op(s.submitContainerStateChange)
	s.ops[ecs.OpSubmitAttachmentStateChanges] = op(s.submitAttachmentStateChanges)
}

// errTaskNotFound is ECS's answer when a single task named by a call is not in
// the cluster.
func errTaskNotFound() error {
	return ecs.Errorf(ecs.CodeInvalidParameter, "The referenced task was not found.")
}

// parseTaskRef turns a task reference into a task ID within cluster: an ID, a
// long ARN (task/<cluster>/<id>) or a short one (task/<id>). ok is false when the
// reference cannot name a task of this cluster (another account, region or
// cluster, another resource type, a malformed ID); such tasks are "not found".
func parseTaskRef(scope resource.Scope, cluster, ref string) (id string, ok bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, validTaskID(ref)
	}
	a, err := resource.ParseARN(ref)
	if err != nil || a.Type != "task" || a.Scope != scope {
		return "", false
	}
	switch len(a.Parts) {
	case 1:
		id = a.Parts[0]
	case 2:
		if a.Parts[0] != cluster {
			return "", false
		}
		id = a.Parts[1]
	default:
		return "", false
	}
	return id, validTaskID(id)
}

// validTaskID accepts ECS task IDs (32 hex digits today, UUIDs in older ARNs)
// and refuses anything that could escape its place in a store key.
func validTaskID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// taskARNFor is the ARN a reference is reported under in failures: the
// reference itself when it is an ARN, else the long ARN of the ID.
func taskARNFor(scope resource.Scope, cluster, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return scope.TaskARN(cluster, ref)
}

// taskView is the wire view of a stored task. Tags are sent only when asked
// for (DescribeTasks include=TAGS, RunTask/StartTask answers); the lists ECS
// always sends are sent as [] when empty.
func taskView(t *resource.Task, withTags bool) ecs.Task {
	v := t.Task
	v.Attachments = wireList(v.Attachments)
	v.Containers = wireList(v.Containers)
	if v.Overrides == nil {
		v.Overrides = &ecs.TaskOverride{}
	}
	ov := *v.Overrides
	ov.ContainerOverrides = wireList(ov.ContainerOverrides)
	ov.InferenceAcceleratorOverrides = wireList(ov.InferenceAcceleratorOverrides)
	v.Overrides = &ov
	if withTags {
		v.Tags = wireList(v.Tags)
	} else {
		v.Tags = nil
	}
	return v
}

// peekTask returns the shared, read-only record of task id in cluster.
func peekTask(snap *cache.Snapshot, scope resource.Scope, cluster, id string) (*resource.Task, int64, bool) {
	e, ok := snap.Get(scope.TaskKey(cluster, id))
	if !ok {
		return nil, 0, false
	}
	t, ok := e.Obj.(*resource.Task)
	return t, e.Rev, ok
}

// taskInstanceHasNoAgent reports whether nothing will ever report on a task placed
// on instance id: the instance is gone or deregistered, or was registered by a
// client through the API (no agent credential). Stopping such a task completes
// at once instead of waiting for an agent.
func taskInstanceHasNoAgent(snap *cache.Snapshot, t *resource.Task) bool {
	return planner.Unattended(snap, t)
}
