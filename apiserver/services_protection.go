package apiserver

import (
	"errors"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Task scale-in protection: UpdateTaskProtection and GetTaskProtection. A
// protected task of a service is never chosen when the service scales in or
// replaces a deployment (controller/service honours it); protection expires
// on its own. Only service tasks can be protected, as in ECS.

const (
	maxProtectionTasks       = 10
	defaultProtectionMinutes = 120
	maxProtectionMinutes     = 2880
)

func (s *Server) updateTaskProtection(c *Call, in *ecs.UpdateTaskProtectionRequest) (*ecs.UpdateTaskProtectionResponse, error) {
	if len(in.Tasks) == 0 || len(in.Tasks) > maxProtectionTasks {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "tasks: between 1 and %d tasks are required; got %d.", maxProtectionTasks, len(in.Tasks))
	}
	minutes := int32(defaultProtectionMinutes)
	if in.ExpiresInMinutes != nil {
		minutes = *in.ExpiresInMinutes
		if minutes < 1 || minutes > maxProtectionMinutes {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "expiresInMinutes: must be between 1 and %d; got %d.", maxProtectionMinutes, minutes)
		}
	}
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		out := &ecs.UpdateTaskProtectionResponse{ProtectedTasks: []ecs.ProtectedTask{}, Failures: []ecs.Failure{}}
		var ops []store.Op
		for _, ref := range in.Tasks {
			t, rev, fail := svcProtectionTask(c, scope, cl.ClusterName, ref)
			if fail != nil {
				out.Failures = append(out.Failures, *fail)
				continue
			}
			t.ProtectionEnabled = in.ProtectionEnabled
			t.ProtectedUntil = nil
			if in.ProtectionEnabled {
				until := c.Now.Add(time.Duration(minutes) * time.Minute)
				t.ProtectedUntil = &until
			}
			ops = append(ops, store.Update(scope.TaskKey(cl.ClusterName, t.ID), resource.Encode(t), rev))
			out.ProtectedTasks = append(out.ProtectedTasks, svcProtectedTask(t, c.Now))
		}
		if len(ops) == 0 {
			return out, nil
		}
		if _, err := c.Commit(ops...); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return nil, err
		}
		return out, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "The tasks are being changed by other requests; retry.")
}

func (s *Server) getTaskProtection(c *Call, in *ecs.GetTaskProtectionRequest) (*ecs.GetTaskProtectionResponse, error) {
	if len(in.Tasks) > maxProtectionTasks {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "tasks: at most %d tasks are allowed; got %d.", maxProtectionTasks, len(in.Tasks))
	}
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	out := &ecs.GetTaskProtectionResponse{ProtectedTasks: []ecs.ProtectedTask{}, Failures: []ecs.Failure{}}
	for _, ref := range in.Tasks {
		t, _, fail := svcProtectionTask(c, scope, cl.ClusterName, ref)
		if fail != nil {
			out.Failures = append(out.Failures, *fail)
			continue
		}
		out.ProtectedTasks = append(out.ProtectedTasks, svcProtectedTask(t, c.Now))
	}
	return out, nil
}

// svcProtectionTask resolves a task reference (id or ARN) to a private copy of
// a service task, or ECS's failure for it.
func svcProtectionTask(c *Call, scope resource.Scope, cluster, ref string) (*resource.Task, int64, *ecs.Failure) {
	id := ref
	arn := scope.TaskARN(cluster, ref)
	if strings.HasPrefix(ref, "arn:") {
		arn = ref
		a, err := resource.ParseARN(ref)
		if err != nil || a.Type != "task" || a.Scope != scope || len(a.Parts) == 0 {
			return nil, 0, &ecs.Failure{Arn: ref, Reason: "MISSING"}
		}
		if len(a.Parts) == 2 && a.Parts[0] != cluster {
			return nil, 0, &ecs.Failure{Arn: ref, Reason: "MISSING"}
		}
		id = a.Parts[len(a.Parts)-1]
	}
	t, rev, ok := Get[resource.Task](c, scope.TaskKey(cluster, id))
	if !ok {
		return nil, 0, &ecs.Failure{Arn: arn, Reason: "MISSING"}
	}
	if t.ServiceName == "" {
		return nil, 0, &ecs.Failure{Arn: t.TaskArn, Reason: "TASK_NOT_VALID", Detail: "Task scale-in protection applies only to tasks of a service."}
	}
	if t.LastStatus == "STOPPED" || t.DesiredStatus == "STOPPED" {
		return nil, 0, &ecs.Failure{Arn: t.TaskArn, Reason: "TASK_NOT_VALID", Detail: "The task is stopping or stopped."}
	}
	return t, rev, nil
}

func svcProtectedTask(t *resource.Task, now time.Time) ecs.ProtectedTask {
	pt := ecs.ProtectedTask{TaskArn: t.TaskArn, ProtectionEnabled: t.Protected(now)}
	if pt.ProtectionEnabled && t.ProtectedUntil != nil {
		pt.ExpirationDate = ecs.NewTime(*t.ProtectedUntil)
	}
	return pt
}
