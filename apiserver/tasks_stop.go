package apiserver

import (
	"context"
	"errors"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// StopTask, and the two steps of stopping every path shares: the stop request
// (desired status STOPPED, which the instance's agent acts on) and the stop
// itself (last status STOPPED, resources given back by the planner).

const (
	taskMaxStopReasonLen  = 255
	taskDefaultStopReason = "Task stopped by user"
	taskAttachmentDeleted = "DELETED"
)

func (s *Server) stopTask(c *Call, in *ecs.StopTaskRequest) (*ecs.StopTaskResponse, error) {
	if len(in.Reason) > taskMaxStopReasonLen {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "reason: must be at most %d characters; got %d.", taskMaxStopReasonLen, len(in.Reason))
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	name := cluster.ClusterName
	id, ok := parseTaskRef(scope, name, in.Task)
	if !ok {
		return nil, errTaskNotFound()
	}
	reason := in.Reason
	if reason == "" {
		reason = taskDefaultStopReason
	}
	var result *resource.Task
	stopped := false
	_, _, err = s.plan.Update(c.ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		cur, _, ok := peekTask(snap, scope, name, id)
		if !ok {
			return nil, errTaskNotFound()
		}
		result, stopped = cur, false
		if cur.DesiredStatus == taskStatusStopped || cur.LastStatus == taskStatusStopped {
			// Already stopping or stopped: the first request's code and reason stand.
			return nil, nil
		}
		next := Clone(cur)
		taskRequestStop(next, resource.StopUserInitiated, reason, c.Now)
		if taskInstanceHasNoAgent(snap, next) {
			// Nothing would ever report this task stopped: stop it now.
			taskFinishStop(next, c.Now)
			stopped = true
		}
		next.Version++
		result = next
		return []*resource.Task{next}, nil
	})
	if err != nil {
		return nil, err
	}
	if stopped {
		s.collectTaskDefinition(c.ctx, scope, result.TaskDefinitionArn)
	}
	v := taskView(result, true)
	return &ecs.StopTaskResponse{Task: &v}, nil
}

// taskRequestStop sets the desired status to STOPPED with the first stop code and
// reason given (a later request or report does not replace them).
func taskRequestStop(t *resource.Task, code, reason string, now time.Time) {
	t.DesiredStatus = taskStatusStopped
	if t.StopCode == "" {
		t.StopCode = ecs.TaskStopCode(code)
	}
	if t.StoppedReason == "" {
		t.StoppedReason = reason
	}
	if t.StoppingAt == nil {
		t.StoppingAt = ecs.NewTime(now)
	}
}

// taskFinishStop moves a task to STOPPED as the server does when no agent will: its
// containers and network interface are gone and every stop timestamp is set.
// The planner gives its resources back in the same transaction.
func taskFinishStop(t *resource.Task, now time.Time) {
	t.DesiredStatus = taskStatusStopped
	t.LastStatus = taskStatusStopped
	if t.StoppingAt == nil {
		t.StoppingAt = ecs.NewTime(now)
	}
	if t.ExecutionStoppedAt == nil {
		t.ExecutionStoppedAt = ecs.NewTime(now)
	}
	if t.StoppedAt == nil {
		t.StoppedAt = ecs.NewTime(now)
	}
	for i := range t.Containers {
		t.Containers[i].LastStatus = containerStatusStopped
	}
	for i := range t.Attachments {
		t.Attachments[i].Status = taskAttachmentDeleted
	}
}

// collectTaskDefinition removes the task's definition revision if a
// DeleteTaskDefinitions left it DELETE_IN_PROGRESS and no record uses it any
// more (this task was its last user). Best effort: a revision left behind is
// removed by the next task of it to stop.
func (s *Server) collectTaskDefinition(ctx context.Context, scope resource.Scope, arn string) {
	family, rev, hasRev, ok, err := parseTaskDefIdent(scope, arn)
	if err != nil || !ok || !hasRev {
		return
	}
	snap := s.cache.Snapshot()
	key := scope.TaskDefinitionKey(family, rev)
	e, found := snap.Get(key)
	if !found {
		return
	}
	d, isDef := e.Obj.(*resource.TaskDefinition)
	if !isDef || d.Status != ecs.TaskDefinitionStatusDELETEINPROGRESS {
		return
	}
	if taskDefsInUse(snap, scope, []*resource.TaskDefinition{d})[d.TaskDefinitionArn] {
		return
	}
	if _, err := s.st.Txn(ctx, store.Delete(key, e.Rev)); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("collect task definition", "arn", arn, "err", err)
	}
}
