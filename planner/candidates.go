package planner

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// Target is where a task may run: a launch type, or one capacity provider of
// a strategy (which then decides the launch type).
type Target struct {
	LaunchType       ecs.LaunchType
	CapacityProvider string
}

// Fargate reports whether the target is the managed Fargate pool.
func (t Target) Fargate() bool {
	if t.CapacityProvider != "" {
		return resource.IsFargateProvider(t.CapacityProvider)
	}
	return t.LaunchType == ecs.LaunchTypeFARGATE
}

// TaskLaunchType is the launch type a task placed through t reports.
func (t Target) TaskLaunchType() ecs.LaunchType {
	switch {
	case t.Fargate():
		return ecs.LaunchTypeFARGATE
	case t.LaunchType != "":
		return t.LaunchType
	}
	return ecs.LaunchTypeEC2
}

// Candidates is one snapshot's view of the instances a task for target may be
// placed on: the cluster's own instances for EC2 (any that is not EXTERNAL) and
// EXTERNAL, the instances a node-group capacity provider launched for that
// provider, and the scope's Fargate pool for FARGATE and FARGATE_SPOT. Each
// view carries the instance's group and running task counts. An instance
// counts as connected while its agent's presence is fresh (API-registered
// instances, without an agent, always do).
type Candidates struct {
	Views     []scheduler.Instance
	Instances map[string]*resource.ContainerInstance
}

// ListCandidates reads the candidates for target in cluster from snap.
func ListCandidates(snap *cache.Snapshot, scope resource.Scope, cluster string, target Target, now time.Time, agentTimeout time.Duration) Candidates {
	out := Candidates{Instances: map[string]*resource.ContainerInstance{}}
	home := cluster
	if target.Fargate() {
		home = resource.FargatePool
	}
	index := map[string]int{}
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, home), func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Cluster != home || ci.Status == resource.InstanceInactive || !target.admits(ci) {
			return true
		}
		connected := ci.SecretHash == ""
		if !connected {
			if pe, ok := snap.Get(scope.PresenceKey(home, ci.ID)); ok {
				p, _ := pe.Obj.(*resource.Presence)
				connected = p.Alive(now, agentTimeout)
			}
		}
		v := InstanceView(ci, connected)
		v.GroupTasks = map[string]int{}
		v.EC2InstanceID = ci.Ec2InstanceId
		if ci.VersionInfo != nil {
			v.AgentVersion = ci.VersionInfo.AgentVersion
		}
		if ci.RegisteredAt != nil {
			v.RegisteredAt = ci.RegisteredAt.Time
		}
		index[ci.ID] = len(out.Views)
		out.Views = append(out.Views, v)
		out.Instances[ci.ID] = ci
		return true
	})
	if len(out.Views) == 0 {
		return out
	}
	// Pool instances hold tasks of every cluster in the scope.
	prefix := scope.KindPrefix(resource.KindTask, cluster)
	if home != cluster {
		prefix = scope.KindPrefix(resource.KindTask)
	}
	snap.Walk(prefix, func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" || t.LastStatus == "STOPPED" || t.InstanceCluster != instanceCluster(home, cluster) {
			return true
		}
		i, ok := index[t.InstanceID]
		if !ok {
			return true
		}
		if t.Cluster == cluster {
			out.Views[i].GroupTasks[t.Group]++
		}
		if t.LastStatus == "RUNNING" {
			out.Views[i].RunningTasks++
		}
		return true
	})
	return out
}

// instanceCluster is the Task.InstanceCluster of tasks placed on home's
// instances by a task of cluster.
func instanceCluster(home, cluster string) string {
	if home == cluster {
		return ""
	}
	return home
}

// admits reports whether ci can take tasks for t.
func (t Target) admits(ci *resource.ContainerInstance) bool {
	switch {
	case t.Fargate():
		return ci.Fargate
	case ci.Fargate:
		return false
	case t.CapacityProvider != "":
		return ci.CapacityProviderName == t.CapacityProvider && !ci.External
	case t.LaunchType == ecs.LaunchTypeEXTERNAL:
		return ci.External
	}
	return !ci.External
}

// Place records on t that it runs on ci, found through target: the instance
// (and, for the pool, the instance's home), the launch type and capacity
// provider, and the Availability Zone.
func Place(t *resource.Task, ci *resource.ContainerInstance, target Target) {
	t.InstanceID = ci.ID
	t.InstanceCluster = instanceCluster(ci.Cluster, t.Cluster)
	if !target.Fargate() {
		t.ContainerInstanceArn = ci.ContainerInstanceArn
	}
	for _, a := range ci.Attributes {
		if a.Name == scheduler.AZAttribute {
			t.AvailabilityZone = a.Value
		}
	}
}

// Unattended reports whether nothing will ever report on t again, so a stop
// must complete at once: it has no instance (it waited for capacity), or its
// instance is gone or deregistered, or has no agent (registered through the
// API).
func Unattended(snap *cache.Snapshot, t *resource.Task) bool {
	if t.InstanceID == "" {
		return true
	}
	ci, ok := cache.Peek[resource.ContainerInstance](snap, t.InstanceKey())
	return !ok || ci.SecretHash == "" || ci.Status == resource.InstanceInactive
}
