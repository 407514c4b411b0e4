package service

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/capacity"
	"github.com/ecsd/ecsd/controller/runtime"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/taskbuild"
)

// TaskLauncher starts and stops a service's tasks. The controller decides;
// the launcher writes.
type TaskLauncher interface {
	// Launch places and starts count tasks of dep (on instanceID only, when
	// set). It returns the tasks it started; when some could not be placed
	// the error is a *PlacementError (with the tasks that were).
	Launch(ctx context.Context, svc *resource.Service, dep *resource.Deployment, count int, instanceID string) ([]*resource.Task, error)
	// Stop asks tasks to stop (desired status STOPPED); tasks that were never
	// placed stop at once.
	Stop(ctx context.Context, scope resource.Scope, cluster string, taskIDs []string, stopCode, reason string) error
}

// PlacementError says why tasks could not be placed.
type PlacementError struct {
	Failure  scheduler.Failure
	Unplaced int
}

func (e *PlacementError) Error() string {
	return fmt.Sprintf("%d tasks could not be placed: %s", e.Unplaced, e.Failure.Reason)
}

// PlannerLauncher writes task records through the planner: placement and
// resource accounting commit in one transaction.
// The records are built by taskbuild, as RunTask's are.
type PlannerLauncher struct {
	Planner *planner.Planner
	Clock   runtime.Clock
	// AgentTimeout is how long an agent counts as connected after its last
	// heartbeat (placement skips disconnected instances).
	AgentTimeout time.Duration
}

var _ TaskLauncher = (*PlannerLauncher)(nil)

// errNoDefinition is a launch that cannot happen until the service changes.
var errNoDefinition = errors.New("task definition not found")

// batchSize bounds the tasks one transaction writes: each task is a create
// and may touch an instance, and etcd refuses transactions of more than 128
// operations by default.
const batchSize = 50

func (l *PlannerLauncher) Launch(ctx context.Context, svc *resource.Service, dep *resource.Deployment, count int, instanceID string) ([]*resource.Task, error) {
	var all []*resource.Task
	for count > 0 {
		n := min(count, batchSize)
		tasks, err := l.launchBatch(ctx, svc, dep, n, instanceID)
		all = append(all, tasks...)
		if err != nil {
			var pe *PlacementError
			if errors.As(err, &pe) {
				pe.Unplaced += count - n
			}
			return all, err
		}
		count -= n
	}
	return all, nil
}

func (l *PlannerLauncher) launchBatch(ctx context.Context, svc *resource.Service, dep *resource.Deployment, count int, instanceID string) ([]*resource.Task, error) {
	scope, cluster := svc.Scope, svc.Cluster
	var failure *PlacementError
	plan, _, err := l.Planner.Commit(ctx, func(snap *cache.Snapshot) (planner.Plan, error) {
		failure = nil
		now := l.Clock.Now().UTC()
		rtd, err := definition(snap, scope, dep.TaskDefinition)
		if err != nil {
			return planner.Plan{}, err
		}
		td := &rtd.TaskDefinition
		strategies := Strategies(dep.PlacementStrategy)
		if len(strategies) == 0 && svc.SchedulingStrategy != ecs.SchedulingStrategyDAEMON {
			strategies = scheduler.DefaultServiceStrategy()
		}
		need, reserve := taskbuild.Needs(td, td.ContainerDefinitions, td.Cpu, td.Memory)
		req := scheduler.Request{Task: need, Count: count, Group: scheduler.ServiceGroup(svc.ServiceName),
			Strategies: strategies, Constraints: placementConstraints(td, dep), Seed: seed(dep.Id, snap.Rev())}
		var copies []planner.Placement
		var plans []scheduler.Plan
		candidates := 0
		if instanceID != "" {
			// A daemon copy for one instance of the cluster.
			target := planner.Target{LaunchType: ecs.LaunchTypeEC2}
			if dep.LaunchType == ecs.LaunchTypeEXTERNAL {
				target.LaunchType = ecs.LaunchTypeEXTERNAL
			}
			cands := planner.ListCandidates(snap, scope, cluster, target, now, l.AgentTimeout)
			var views []scheduler.Instance
			for _, v := range cands.Views {
				if v.ID == instanceID {
					views = append(views, v)
				}
			}
			candidates = len(views)
			p := scheduler.Place(views, req)
			plans = append(plans, p)
			for _, pl := range p.Placements {
				copies = append(copies, planner.Placement{Target: target, Instance: cands.Instances[pl.InstanceID]})
			}
		} else {
			sp := planner.PlaceSpread(snap, scope, cluster, serviceTargets(snap, svc, dep, count), req, now, l.AgentTimeout)
			copies, plans, candidates = sp.Copies, sp.Plans, sp.Candidates
		}
		if len(copies) < count {
			failure = &PlacementError{Unplaced: count - len(copies), Failure: scheduler.Failure{Reason: scheduler.ReasonNoInstances}}
			if candidates > 0 {
				for _, p := range plans {
					if len(p.Failures) > 0 {
						failure.Failure = p.Failures[0]
						break
					}
				}
			}
		}
		spec := taskSpec(svc, dep, rtd, reserve)
		tasks := make([]*resource.Task, 0, len(copies))
		for _, pl := range copies {
			tasks = append(tasks, spec.New(now, pl))
		}
		return planner.Plan{Tasks: tasks}, nil
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		return plan.Tasks, failure
	}
	return plan.Tasks, nil
}

// definition resolves a deployment's task definition ARN in snap.
func definition(snap *cache.Snapshot, scope resource.Scope, arn string) (*resource.TaskDefinition, error) {
	a, err := resource.ParseARN(arn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errNoDefinition, arn)
	}
	key, _, ok := resource.ResolveARN(a)
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNoDefinition, arn)
	}
	e, found := snap.Get(key)
	if !found {
		return nil, fmt.Errorf("%w: %s", errNoDefinition, arn)
	}
	td, ok := e.Obj.(*resource.TaskDefinition)
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNoDefinition, arn)
	}
	return td, nil
}

func seed(depID string, rev int64) int64 {
	h := fnv.New64a()
	h.Write([]byte(depID))
	return int64(h.Sum64()>>1) ^ rev
}

// taskSpec is how a service's tasks are built: group service:<name>,
// startedBy the deployment id, the service's execute-command setting and
// network configuration, the deployment's platform version and placement
// rules (kept on copies waiting for capacity), and the service's tags.
func taskSpec(svc *resource.Service, dep *resource.Deployment, rtd *resource.TaskDefinition, reserve resource.Usage) *taskbuild.Spec {
	td := &rtd.TaskDefinition
	return &taskbuild.Spec{
		Scope: svc.Scope, Cluster: svc.Cluster, Definition: td,
		CPU: td.Cpu, Memory: td.Memory, Reserve: reserve,
		Group: scheduler.ServiceGroup(svc.ServiceName), StartedBy: dep.Id,
		Tags:                 taskTags(svc, rtd),
		EnableExecuteCommand: svc.EnableExecuteCommand,
		NetworkConfiguration: dep.NetworkConfiguration,
		PlatformVersion:      dep.PlatformVersion,
		PlacementConstraints: dep.PlacementConstraints, PlacementStrategy: dep.PlacementStrategy,
		ServiceName: svc.ServiceName, DeploymentID: dep.Id,
	}
}

// taskTags are the tags a service's task gets: the definition's
// (propagateTags TASK_DEFINITION) or the service's (SERVICE), then ECS's
// managed tags when enabled.
func taskTags(svc *resource.Service, rtd *resource.TaskDefinition) []ecs.Tag {
	var tags []ecs.Tag
	switch svc.PropagateTags {
	case ecs.PropagateTagsTASKDEFINITION:
		tags = append(tags, rtd.Tags...)
	case ecs.PropagateTagsSERVICE:
		tags = append(tags, svc.Tags...)
	}
	if svc.EnableECSManagedTags {
		tags = append(tags,
			ecs.Tag{Key: "aws:ecs:clusterName", Value: svc.Cluster},
			ecs.Tag{Key: "aws:ecs:serviceName", Value: svc.ServiceName})
	}
	return tags
}

// Stop asks each task to stop: desired STOPPED, the stop code and reason, and
// stoppingAt; a task never placed is STOPPED at once (nothing runs it).
func (l *PlannerLauncher) Stop(ctx context.Context, scope resource.Scope, cluster string, taskIDs []string, stopCode, reason string) error {
	for len(taskIDs) > batchSize {
		if err := l.Stop(ctx, scope, cluster, taskIDs[:batchSize], stopCode, reason); err != nil {
			return err
		}
		taskIDs = taskIDs[batchSize:]
	}
	_, _, err := l.Planner.Update(ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		now := l.Clock.Now().UTC()
		var out []*resource.Task
		for _, id := range taskIDs {
			e, ok := snap.Get(scope.TaskKey(cluster, id))
			if !ok {
				continue
			}
			cur, ok := e.Obj.(*resource.Task)
			if !ok || cur.LastStatus == statusStopped || cur.DesiredStatus == statusStopped {
				continue
			}
			t, err := cloneTask(e.Key, cur)
			if err != nil {
				return nil, err
			}
			t.DesiredStatus = statusStopped
			t.StopCode = ecs.TaskStopCode(stopCode)
			t.StoppedReason = reason
			t.StoppingAt = ecs.NewTime(now)
			t.Version++
			if planner.Unattended(snap, t) {
				t.LastStatus = statusStopped
				t.StoppedAt = ecs.NewTime(now)
				t.ExecutionStoppedAt = ecs.NewTime(now)
			}
			out = append(out, t)
		}
		return out, nil
	})
	return err
}

func cloneTask(_ string, t *resource.Task) (*resource.Task, error) { return resource.Clone(t), nil }

// serviceTargets divides count new tasks of dep over its launch type or
// capacity provider strategy, counting the tasks the service already holds
// per provider so the strategy's base and weights hold across launches.
func serviceTargets(snap *cache.Snapshot, svc *resource.Service, dep *resource.Deployment, count int) []planner.TargetCount {
	strategy := capacity.FromWire(dep.CapacityProviderStrategy)
	var current map[string]int
	if len(strategy) > 0 {
		current = map[string]int{}
		snap.Walk(svc.Scope.KindPrefix(resource.KindTask, svc.Cluster), func(e *cache.Entry) bool {
			t, ok := e.Obj.(*resource.Task)
			if ok && t.ServiceName == svc.ServiceName && t.DesiredStatus == statusRunning && t.LastStatus != statusStopped {
				current[t.CapacityProviderName]++
			}
			return true
		})
	}
	lt := dep.LaunchType
	if lt == "" {
		lt = ecs.LaunchTypeEC2
	}
	return planner.SplitTargets(lt, strategy, current, count)
}
