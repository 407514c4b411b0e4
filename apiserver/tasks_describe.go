package apiserver

import (
	"slices"

	"github.com/ecsd/ecsd/api/ecs"
)

// DescribeTasks: up to 100 tasks by ID or ARN; what is not in the cluster is
// reported in failures as MISSING. Stopped tasks stay describable until
// controller/taskgc collects them (StoppedTaskRetention).

const maxDescribeTasks = 100

func (s *Server) describeTasks(c *Call, in *ecs.DescribeTasksRequest) (*ecs.DescribeTasksResponse, error) {
	if len(in.Tasks) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "Tasks cannot be empty.")
	}
	if len(in.Tasks) > maxDescribeTasks {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "tasks: at most %d tasks can be described at once; got %d.", maxDescribeTasks, len(in.Tasks))
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	withTags := slices.Contains(in.Include, ecs.TaskFieldTAGS)
	scope := c.Scope()
	name := cluster.ClusterName
	snap := c.Snapshot()
	out := &ecs.DescribeTasksResponse{Tasks: []ecs.Task{}, Failures: []ecs.Failure{}}
	seen := map[string]bool{}
	for _, ref := range in.Tasks {
		id, ok := parseTaskRef(scope, name, ref)
		var found bool
		if ok {
			if seen[id] {
				continue
			}
			if t, _, exists := peekTask(snap, scope, name, id); exists {
				seen[id] = true
				found = true
				out.Tasks = append(out.Tasks, taskView(t, withTags))
			}
		}
		if !found {
			out.Failures = append(out.Failures, ecs.Failure{Arn: taskARNFor(scope, name, ref), Reason: "MISSING"})
		}
	}
	return out, nil
}
