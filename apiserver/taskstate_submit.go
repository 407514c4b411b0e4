package apiserver

import (
	"errors"
	"strings"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// SubmitTaskStateChange, SubmitContainerStateChange and
// SubmitAttachmentStateChanges: the public forms of an agent's report, as
// Amazon's ECS agent sends them. Each becomes a StateChange for
// applyStateChange, attributed to the instance the task is placed on. Their
// reports are partial (only what changed), which the merge handles: what a
// report leaves out is kept. A stale report is acknowledged and ignored, as
// the agent would only resend it otherwise.

const stateChangeACK = "ACK"

func (s *Server) submitTaskStateChange(c *Call, in *ecs.SubmitTaskStateChangeRequest) (*ecs.SubmitTaskStateChangeResponse, error) {
	t, cluster, err := s.submittedTask(c, in.Cluster, in.Task)
	if err != nil {
		return nil, err
	}
	sc := &agentapi.StateChange{TaskArn: t.TaskArn, Status: in.Status, StoppedReason: in.Reason, At: c.Now}
	if sc.Status == "" {
		sc.Status = t.LastStatus
	}
	sc.PullStartedAt = stateWireTime(in.PullStartedAt)
	sc.PullStoppedAt = stateWireTime(in.PullStoppedAt)
	sc.ExecutionStoppedAt = stateWireTime(in.ExecutionStoppedAt)
	for _, cs := range in.Containers {
		sc.Containers = append(sc.Containers, submittedContainer(cs.ContainerName, cs.Status, cs.RuntimeId, cs.ImageDigest, cs.Reason, cs.ExitCode, cs.NetworkBindings))
	}
	for _, a := range in.Attachments {
		id, ok := taskAttachmentID(c.Scope(), a.AttachmentArn)
		if !ok {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attachments: %q is not an attachment ARN.", a.AttachmentArn)
		}
		sc.Attachments = append(sc.Attachments, ecs.Attachment{Id: id, Status: a.Status})
	}
	if err := s.submitState(c, cluster, t, sc); err != nil {
		return nil, err
	}
	return &ecs.SubmitTaskStateChangeResponse{Acknowledgment: stateChangeACK}, nil
}

func (s *Server) submitContainerStateChange(c *Call, in *ecs.SubmitContainerStateChangeRequest) (*ecs.SubmitContainerStateChangeResponse, error) {
	t, cluster, err := s.submittedTask(c, in.Cluster, in.Task)
	if err != nil {
		return nil, err
	}
	if in.ContainerName == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerName is required.")
	}
	sc := &agentapi.StateChange{TaskArn: t.TaskArn, Status: t.LastStatus, At: c.Now,
		Containers: []agentapi.ContainerState{submittedContainer(in.ContainerName, in.Status, in.RuntimeId, "", in.Reason, in.ExitCode, in.NetworkBindings)}}
	if err := s.submitState(c, cluster, t, sc); err != nil {
		return nil, err
	}
	return &ecs.SubmitContainerStateChangeResponse{Acknowledgment: stateChangeACK}, nil
}

func (s *Server) submitAttachmentStateChanges(c *Call, in *ecs.SubmitAttachmentStateChangesRequest) (*ecs.SubmitAttachmentStateChangesResponse, error) {
	if len(in.Attachments) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attachments: at least one attachment is required.")
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	name := cluster.ClusterName
	type change struct {
		task *resource.Task
		atts []ecs.Attachment
	}
	var changes []*change
	snap := c.Snapshot()
	for i, a := range in.Attachments {
		id, ok := taskAttachmentID(scope, a.AttachmentArn)
		if !ok {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attachments[%d].attachmentArn: %q is not an attachment ARN.", i, a.AttachmentArn)
		}
		t := taskWithAttachment(snap, scope, name, id)
		if t == nil {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attachments[%d].attachmentArn: no task of cluster %s has attachment %s.", i, name, id)
		}
		var ch *change
		for _, x := range changes {
			if x.task.ID == t.ID {
				ch = x
			}
		}
		if ch == nil {
			ch = &change{task: t}
			changes = append(changes, ch)
		}
		ch.atts = append(ch.atts, ecs.Attachment{Id: id, Status: a.Status})
	}
	for _, ch := range changes {
		sc := &agentapi.StateChange{TaskArn: ch.task.TaskArn, Status: ch.task.LastStatus, At: c.Now, Attachments: ch.atts}
		if err := s.submitState(c, name, ch.task, sc); err != nil {
			return nil, err
		}
	}
	return &ecs.SubmitAttachmentStateChangesResponse{Acknowledgment: stateChangeACK}, nil
}

// submittedTask finds the task a public report is about.
func (s *Server) submittedTask(c *Call, clusterRef, taskRef string) (*resource.Task, string, error) {
	cluster, err := s.resolveCluster(c, clusterRef, false)
	if err != nil {
		return nil, "", err
	}
	name := cluster.ClusterName
	if taskRef == "" {
		return nil, "", ecs.Errorf(ecs.CodeInvalidParameter, "task is required.")
	}
	id, ok := parseTaskRef(c.Scope(), name, taskRef)
	if !ok {
		return nil, "", errTaskNotFound()
	}
	t, _, ok := peekTask(c.Snapshot(), c.Scope(), name, id)
	if !ok {
		return nil, "", errTaskNotFound()
	}
	return t, name, nil
}

// submitState applies a public report; a stale one is acknowledged unchanged.
func (s *Server) submitState(c *Call, cluster string, t *resource.Task, sc *agentapi.StateChange) error {
	err := s.applyStateChange(c.ctx, c.Scope(), cluster, t.InstanceKey(), sc)
	if errors.Is(err, errStaleStateChange) {
		return nil
	}
	return err
}

// submittedContainer translates one container of a public report. Statuses
// other than PENDING, RUNNING and STOPPED (newer agents report intermediate
// ones) leave the container's status as it is.
func submittedContainer(name, status, runtimeID, digest, reason string, exit *int32, bindings []ecs.NetworkBinding) agentapi.ContainerState {
	cs := agentapi.ContainerState{Name: name, RuntimeID: runtimeID, ImageDigest: digest, Reason: reason, ExitCode: exit, NetworkBindings: bindings}
	if stateContainerRank(status) >= 0 {
		cs.LastStatus = status
	}
	return cs
}

// taskAttachmentID takes the ID from an attachment ARN
// (arn:aws:ecs:<region>:<account>:attachment/<id>), or accepts a bare ID.
func taskAttachmentID(scope resource.Scope, ref string) (string, bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, ref != "" && !strings.Contains(ref, "/")
	}
	a, err := resource.ParseARN(ref)
	if err != nil || a.Type != "attachment" || a.Scope != scope {
		return "", false
	}
	id := a.Parts[len(a.Parts)-1]
	return id, id != ""
}

// taskWithAttachment finds the task of cluster holding attachment id.
func taskWithAttachment(snap *cache.Snapshot, scope resource.Scope, cluster, id string) *resource.Task {
	var found *resource.Task
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok {
			return true
		}
		for _, a := range t.Attachments {
			if a.Id == id {
				found = t
				return false
			}
		}
		return true
	})
	return found
}

func stateWireTime(t *ecs.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}
