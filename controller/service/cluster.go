package service

import (
	"math"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/taskbuild"
)

// clusterView is one snapshot's view of a cluster for the service
// scheduler: its instances as placement sees them and its tasks.
type clusterView struct {
	instances []*resource.ContainerInstance
	views     []scheduler.Instance
	tasks     []*resource.Task
}

// viewCluster reads a cluster's instances and tasks from snap. An instance
// counts as connected while its agent's presence record is fresh.
func viewCluster(snap *cache.Snapshot, scope resource.Scope, cluster string, now time.Time, agentTimeout time.Duration) *clusterView {
	cv := &clusterView{}
	groups := map[string]map[string]int{}
	running := map[string]int{}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.Cluster != cluster {
			return true
		}
		cv.tasks = append(cv.tasks, t)
		if t.LastStatus != statusStopped && t.InstanceID != "" {
			g := groups[t.InstanceID]
			if g == nil {
				g = map[string]int{}
				groups[t.InstanceID] = g
			}
			g[t.Group]++
			if t.LastStatus == statusRunning {
				running[t.InstanceID]++
			}
		}
		return true
	})
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, cluster), func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Cluster != cluster {
			return true
		}
		connected := false
		if pe, ok := snap.Get(scope.PresenceKey(cluster, ci.ID)); ok {
			if p, ok := pe.Obj.(*resource.Presence); ok {
				connected = p.Alive(now, agentTimeout)
			}
		}
		v := planner.InstanceView(ci, connected)
		v.GroupTasks = groups[ci.ID]
		v.RunningTasks = running[ci.ID]
		v.EC2InstanceID = ci.Ec2InstanceId
		if ci.VersionInfo != nil {
			v.AgentVersion = ci.VersionInfo.AgentVersion
		}
		if ci.RegisteredAt != nil {
			v.RegisteredAt = ci.RegisteredAt.Time
		}
		cv.instances = append(cv.instances, ci)
		cv.views = append(cv.views, v)
		return true
	})
	return cv
}

// serviceTasks turns the service's tasks into the decider's view.
func (cv *clusterView) serviceTasks(svc *resource.Service, now time.Time) []TaskState {
	var out []TaskState
	for _, t := range cv.tasks {
		if t.ServiceName != svc.ServiceName {
			continue
		}
		ts := TaskState{
			ID: t.ID, DeploymentID: t.DeploymentID, InstanceID: t.InstanceID,
			LastStatus: t.LastStatus, DesiredStatus: t.DesiredStatus, Health: t.HealthStatus,
			HasHealthCheck: hasHealthCheck(&t.Definition), StopCode: string(t.StopCode),
			Protected: t.Protected(now), CPU: t.Reserved.CPU, Memory: t.Reserved.Memory,
			OffCluster: t.InstanceID == "" || t.InstanceCluster != "", CapacityProvider: t.CapacityProviderName,
		}
		if t.CreatedAt != nil {
			ts.CreatedAt = t.CreatedAt.Time
		}
		if t.StartedAt != nil {
			ts.StartedAt = t.StartedAt.Time
		}
		if t.StoppedAt != nil {
			ts.StoppedAt = t.StoppedAt.Time
		}
		out = append(out, ts)
	}
	return out
}

// serviceInstances turns the cluster's instances into the decider's view.
// eligible says whether an instance meets the service's constraints (nil:
// every instance does).
func (cv *clusterView) serviceInstances(svc *resource.Service, eligible func(scheduler.Instance) bool) []InstanceState {
	others := map[string]int{}
	for _, t := range cv.tasks {
		if t.LastStatus != statusStopped && t.InstanceID != "" && t.ServiceName != svc.ServiceName {
			others[t.InstanceID]++
		}
	}
	out := make([]InstanceState, 0, len(cv.instances))
	for i, ci := range cv.instances {
		v := cv.views[i]
		out = append(out, InstanceState{
			ID: ci.ID, Status: ci.Status, OtherTasks: others[ci.ID], View: v,
			Eligible: eligible == nil || eligible(v),
		})
	}
	return out
}

func hasHealthCheck(td *ecs.TaskDefinition) bool {
	for _, c := range td.ContainerDefinitions {
		if c.HealthCheck != nil && len(c.HealthCheck.Command) > 0 {
			return true
		}
	}
	return false
}

// eligibility returns whether an instance meets the deployment's constraints
// (and the definition's required attributes), whatever it has left: it asks
// the placement engine to place one copy on an unlimited copy of it.
func eligibility(td *ecs.TaskDefinition, dep *resource.Deployment) func(scheduler.Instance) bool {
	full, _ := taskbuild.Needs(td, td.ContainerDefinitions, td.Cpu, td.Memory)
	need := scheduler.Task{RequiredAttributes: full.RequiredAttributes, NetworkMode: string(td.NetworkMode)}
	cons := placementConstraints(td, dep)
	return func(v scheduler.Instance) bool {
		v.CPU, v.Memory = math.MaxInt32, math.MaxInt32
		v.TCPPorts, v.UDPPorts = nil, nil
		v.Status = resource.InstanceActive
		v.AgentConnected = true
		v.GroupTasks = nil // distinctInstance is one per instance already
		p := scheduler.Place([]scheduler.Instance{v}, scheduler.Request{Task: need, Count: 1, Constraints: cons})
		return len(p.Placements) == 1
	}
}

// placementConstraints are the definition's and the deployment's together.
func placementConstraints(td *ecs.TaskDefinition, dep *resource.Deployment) []scheduler.Constraint {
	var out []scheduler.Constraint
	for _, c := range td.PlacementConstraints {
		out = append(out, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	return append(out, Constraints(dep.PlacementConstraints)...)
}
