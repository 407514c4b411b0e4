package apiserver

import (
	"encoding/base64"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// ListTasks: the cluster's tasks in key (task ID) order, filtered by desired
// status (RUNNING unless asked otherwise, which includes tasks not yet
// running; STOPPED; PENDING, which ECS never sets as a desired status, so it
// lists nothing), container instance, family, service, startedBy and launch
// type. startedBy, as ECS documents, must be the only filter: it combines
// with the desired status but not with the others.

const (
	maxListTasks        = 100
	taskListTokenPrefix = "ecsd.tasks.v1:"
)

func (s *Server) listTasks(c *Call, in *ecs.ListTasksRequest) (*ecs.ListTasksResponse, error) {
	limit := maxListTasks
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListTasks {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxListTasks, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	if in.StartedBy != "" && (in.Family != "" || in.ServiceName != "" || in.ContainerInstance != "" || in.LaunchType != "") {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "startedBy: when you filter by startedBy it must be the only filter (besides desiredStatus); drop family, serviceName, containerInstance and launchType.")
	}
	if in.DaemonName != "" {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "daemonName: ecsd does not run daemons yet.")
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	name := cluster.ClusterName
	instanceID := ""
	if in.ContainerInstance != "" {
		id, ok := taskParseInstanceRef(scope, name, in.ContainerInstance)
		if !ok {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstance: %q is not a container instance ID or ARN of cluster %s.", in.ContainerInstance, name)
		}
		instanceID = id
	}
	desired := in.DesiredStatus
	if desired == "" {
		desired = ecs.DesiredStatusRUNNING
	}
	prefix := scope.KindPrefix(resource.KindTask, name)
	from := prefix
	if in.NextToken != "" {
		after, err := decodeTaskListToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		from = scope.TaskKey(name, after) + "\x00"
	}
	out := &ecs.ListTasksResponse{TaskArns: []string{}}
	last := ""
	c.Snapshot().WalkFrom(prefix, from, func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.Cluster != name {
			return true
		}
		if t.DesiredStatus != string(desired) ||
			(instanceID != "" && t.InstanceID != instanceID) ||
			(in.Family != "" && t.Definition.Family != in.Family) ||
			(in.ServiceName != "" && t.ServiceName != in.ServiceName) ||
			(in.StartedBy != "" && t.StartedBy != in.StartedBy) ||
			(in.LaunchType != "" && t.LaunchType != in.LaunchType) {
			return true
		}
		if len(out.TaskArns) == limit {
			out.NextToken = encodeTaskListToken(last)
			return false
		}
		out.TaskArns = append(out.TaskArns, t.TaskArn)
		last = t.ID
		return true
	})
	return out, nil
}

// The list token is a versioned, encoded task ID to resume after; listing is
// in key order, so a page never repeats a task.
func encodeTaskListToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(taskListTokenPrefix + after))
}

func decodeTaskListToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	after, ok := strings.CutPrefix(string(b), taskListTokenPrefix)
	if err != nil || !ok || !validTaskID(after) {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken of a previous ListTasks response.")
	}
	return after, nil
}
