package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// errStaleStateChange classifies a report older than what the server already
// has (its status is behind the task's). errors.Is(err, errStaleStateChange)
// lets the agent channel acknowledge it as harmless; the state is unchanged.
var errStaleStateChange = errors.New("stale state change")

// stateChangeError is a rejected report: an ECS client error (so the public
// Submit* operations answer 400), optionally also stale.
type stateChangeError struct {
	e     *ecs.Error
	stale bool
}

func (e *stateChangeError) Error() string { return e.e.Message }

func (e *stateChangeError) Unwrap() []error {
	if e.stale {
		return []error{e.e, errStaleStateChange}
	}
	return []error{e.e}
}

func stateReject(format string, args ...any) error {
	return &stateChangeError{e: ecs.Errorf(ecs.CodeInvalidParameter, format, args...)}
}

func stateStale(format string, args ...any) error {
	return &stateChangeError{e: ecs.Errorf(ecs.CodeInvalidParameter, format, args...), stale: true}
}

// stateContainerRank orders container statuses; they only move forward.
func stateContainerRank(s string) int {
	switch s {
	case containerStatusPending:
		return 0
	case containerStatusRunning:
		return 1
	case containerStatusStopped:
		return 2
	}
	return -1
}

// stateInternalContainer names the agent's own containers (the awsvpc pause
// container): never part of a task's reported containers.
const stateInternalContainer = "~internal~"

// applyStateChange records an agent's report about one of its tasks. It is the
// one path by which task status moves after placement (the agent channel and
// SubmitTaskStateChange both call it). Stale or malformed reports are rejected
// with an error and change nothing.
func (s *Server) applyStateChange(ctx context.Context, scope resource.Scope, cluster, instanceKey string, sc *agentapi.StateChange) error {
	if sc == nil {
		return stateReject("state change: empty report.")
	}
	id, ok := parseTaskRef(scope, cluster, sc.TaskArn)
	if !ok {
		return stateReject("taskArn: %q is not a task of cluster %s.", sc.TaskArn, cluster)
	}
	if resource.TaskStatusRank(sc.Status) < 0 {
		return stateReject("status: %q is not a task status (%s).", sc.Status, strings.Join(resource.TaskStatusOrder, ", "))
	}
	now := s.cfg.Now().UTC()
	stopped := false
	var arn string
	_, _, err := s.plan.Update(ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		cur, _, ok := peekTask(snap, scope, cluster, id)
		if !ok {
			return nil, stateReject("task %s: not found in cluster %s.", id, cluster)
		}
		// By key, not id: a Fargate pool instance reports tasks of every cluster.
		if cur.InstanceKey() != instanceKey {
			return nil, stateReject("task %s: not assigned to the reporting container instance.", id)
		}
		next := Clone(cur)
		changed, err := mergeStateChange(next, sc, now)
		if err != nil || !changed {
			return nil, err
		}
		next.Version++
		stopped = next.LastStatus == taskStatusStopped
		arn = next.TaskDefinitionArn
		return []*resource.Task{next}, nil
	})
	if err != nil {
		return err
	}
	if stopped {
		s.collectTaskDefinition(ctx, scope, arn)
	}
	return nil
}

// mergeStateChange applies a cumulative report to t (a private copy) and says
// whether anything changed. Statuses never move backward: a report behind the
// task's status is stale; a repeated one changes nothing. Reports about a
// STOPPED task are ignored (it is final).
func mergeStateChange(t *resource.Task, sc *agentapi.StateChange, now time.Time) (bool, error) {
	curRank := resource.TaskStatusRank(t.LastStatus)
	rank := resource.TaskStatusRank(sc.Status)
	if t.LastStatus == taskStatusStopped {
		if rank == curRank {
			return false, nil
		}
		return false, stateStale("task %s is already STOPPED; a %s report is stale.", t.ID, sc.Status)
	}
	if rank < curRank {
		return false, stateStale("task %s is already %s; a %s report is stale.", t.ID, t.LastStatus, sc.Status)
	}
	before, _ := json.Marshal(t)

	// Containers first: a malformed list rejects the whole report.
	for _, cs := range sc.Containers {
		if strings.HasPrefix(cs.Name, stateInternalContainer) {
			continue
		}
		i := stateContainerIndex(t, cs.Name)
		if i < 0 {
			return false, stateReject("containers: task %s has no container named %q.", t.ID, cs.Name)
		}
		if cs.LastStatus != "" && stateContainerRank(cs.LastStatus) < 0 {
			return false, stateReject("containers[%s].lastStatus: %q is not a container status (PENDING, RUNNING, STOPPED).", cs.Name, cs.LastStatus)
		}
	}
	for _, cs := range sc.Containers {
		if i := stateContainerIndex(t, cs.Name); i >= 0 {
			stateMergeContainer(&t.Containers[i], cs)
		}
	}

	t.LastStatus = sc.Status
	if sc.HealthStatus != "" {
		t.HealthStatus = ecs.HealthStatus(sc.HealthStatus)
	}
	stateSetTime(&t.PullStartedAt, sc.PullStartedAt)
	stateSetTime(&t.PullStoppedAt, sc.PullStoppedAt)
	if t.StartedAt == nil && (sc.StartedAt != nil || sc.Status == taskStatusRunning) {
		t.StartedAt = ecs.NewTime(stateOrNow(sc.StartedAt, now))
	}
	if rank >= resource.TaskStatusRank("DEACTIVATING") {
		// The task is on its way out: it cannot come back.
		t.DesiredStatus = taskStatusStopped
		if t.StoppingAt == nil {
			t.StoppingAt = ecs.NewTime(now)
		}
	}
	stateSetTime(&t.ExecutionStoppedAt, sc.ExecutionStoppedAt)
	if t.StopCode == "" && sc.StopCode != "" {
		t.StopCode = ecs.TaskStopCode(sc.StopCode)
	}
	if t.StoppedReason == "" && sc.StoppedReason != "" {
		t.StoppedReason = sc.StoppedReason
	}
	for _, a := range sc.Attachments {
		stateMergeAttachment(t, a)
	}
	if sc.Connectivity != "" && string(t.Connectivity) != sc.Connectivity {
		t.Connectivity = ecs.Connectivity(sc.Connectivity)
		t.ConnectivityAt = ecs.NewTime(stateOrNow(sc.ConnectivityAt, now))
	}
	if t.Connectivity == "" && sc.Status != taskStatusStopped {
		// An agent reporting on the task is connected to it.
		t.Connectivity = ecs.ConnectivityCONNECTED
		t.ConnectivityAt = ecs.NewTime(now)
	}
	if sc.Status == taskStatusStopped {
		taskFinishStop(t, now)
	}
	after, _ := json.Marshal(t)
	return string(before) != string(after), nil
}

func stateContainerIndex(t *resource.Task, name string) int {
	for i := range t.Containers {
		if t.Containers[i].Name == name {
			return i
		}
	}
	return -1
}

// stateMergeContainer applies one container's reported state; its status only
// moves forward, and what the report leaves out is kept.
func stateMergeContainer(c *ecs.Container, cs agentapi.ContainerState) {
	if cs.LastStatus != "" && stateContainerRank(cs.LastStatus) >= stateContainerRank(c.LastStatus) {
		c.LastStatus = cs.LastStatus
	}
	if cs.RuntimeID != "" {
		c.RuntimeId = cs.RuntimeID
	}
	if cs.ImageDigest != "" {
		c.ImageDigest = cs.ImageDigest
	}
	if cs.ExitCode != nil {
		v := *cs.ExitCode
		c.ExitCode = &v
	}
	if cs.Reason != "" {
		c.Reason = cs.Reason
	}
	if cs.HealthStatus != "" {
		c.HealthStatus = ecs.HealthStatus(cs.HealthStatus)
	}
	if cs.NetworkBindings != nil {
		c.NetworkBindings = cs.NetworkBindings
	}
	if cs.NetworkInterfaces != nil {
		c.NetworkInterfaces = cs.NetworkInterfaces
	}
}

// stateMergeAttachment updates the attachment with a's ID (status, and details by
// name), or adds it.
func stateMergeAttachment(t *resource.Task, a ecs.Attachment) {
	for i := range t.Attachments {
		cur := &t.Attachments[i]
		if cur.Id != a.Id {
			continue
		}
		if a.Status != "" {
			cur.Status = a.Status
		}
		if a.Type != "" {
			cur.Type = a.Type
		}
		for _, d := range a.Details {
			replaced := false
			for j := range cur.Details {
				if cur.Details[j].Name == d.Name {
					cur.Details[j].Value = d.Value
					replaced = true
				}
			}
			if !replaced {
				cur.Details = append(cur.Details, d)
			}
		}
		return
	}
	if a.Id != "" {
		t.Attachments = append(t.Attachments, a)
	}
}

func stateSetTime(dst **ecs.Time, src *time.Time) {
	if src != nil && !src.IsZero() {
		*dst = ecs.NewTime(*src)
	}
}

func stateOrNow(t *time.Time, now time.Time) time.Time {
	if t != nil && !t.IsZero() {
		return *t
	}
	return now
}
