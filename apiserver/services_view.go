package apiserver

import (
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// svcTaskCounts are one service's task counts, in total and by deployment.
type svcTaskCounts struct {
	running, pending int32
	byDep            map[string]*svcDepCounts
}

type svcDepCounts struct {
	running, pending, live int32
}

// svcCounts counts the tasks of every service of a cluster in one walk:
// running (RUNNING) and pending (before RUNNING) by service and deployment,
// and live (not stopped, not asked to stop) by deployment. Counts are never
// stored; they are derived here on every read.
func svcCounts(snap *cache.Snapshot, scope resource.Scope, cluster string) map[string]*svcTaskCounts {
	out := map[string]*svcTaskCounts{}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.ServiceName == "" || t.LastStatus == "STOPPED" {
			return true
		}
		sc := out[t.ServiceName]
		if sc == nil {
			sc = &svcTaskCounts{byDep: map[string]*svcDepCounts{}}
			out[t.ServiceName] = sc
		}
		dc := sc.byDep[t.DeploymentID]
		if dc == nil {
			dc = &svcDepCounts{}
			sc.byDep[t.DeploymentID] = dc
		}
		switch what, _ := t.CountsAs(); what {
		case resource.CountRunningTask:
			sc.running++
			dc.running++
		case resource.CountPendingTask:
			sc.pending++
			dc.pending++
		}
		if t.DesiredStatus != "STOPPED" {
			dc.live++
		}
		return true
	})
	return out
}

// serviceView is the wire view of a stored service: its spec with ECS's
// defaults shown, its deployments with their counts, its events, and its
// tags when asked for.
func (s *Server) serviceView(c *Call, rec *resource.Service, counts map[string]*svcTaskCounts, tags bool) ecs.Service {
	v := rec.Service // a shallow copy: slices below are replaced, never written into
	v.Events = wireList(rec.Events)
	v.LoadBalancers = wireList(rec.LoadBalancers)
	v.ServiceRegistries = wireList(rec.ServiceRegistries)
	v.PlacementConstraints = wireList(rec.PlacementConstraints)
	v.PlacementStrategy = wireList(rec.PlacementStrategy)
	v.Tags = nil
	if tags {
		v.Tags = wireList(rec.Tags)
	}
	var sc *svcTaskCounts
	if counts != nil {
		sc = counts[rec.ServiceName]
	}
	if sc == nil {
		sc = &svcTaskCounts{byDep: map[string]*svcDepCounts{}}
	}
	if rec.Status != resource.ServiceInactive {
		v.RunningCount, v.PendingCount = sc.running, sc.pending
	}
	v.Deployments = make([]ecs.Deployment, 0, len(rec.Rollouts))
	v.CurrentServiceRevisions = nil
	for _, r := range rec.Rollouts {
		d := r.Deployment
		dc := sc.byDep[r.Id]
		if dc == nil {
			dc = &svcDepCounts{}
		}
		d.RunningCount, d.PendingCount = dc.running, dc.pending
		if r.Status == resource.DeploymentPrimary {
			d.DesiredCount = rec.DesiredCount
			v.CurrentServiceDeployment = r.ServiceDeploymentArn
		} else {
			// An old deployment's target shrinks as it drains.
			d.DesiredCount = dc.live
		}
		d.CapacityProviderStrategy = wireList(d.CapacityProviderStrategy)
		v.Deployments = append(v.Deployments, d)
		if r.ServiceRevisionArn != "" {
			v.CurrentServiceRevisions = append(v.CurrentServiceRevisions, ecs.ServiceCurrentRevisionSummary{
				Arn: r.ServiceRevisionArn, RequestedTaskCount: d.DesiredCount, RunningTaskCount: d.RunningCount, PendingTaskCount: d.PendingCount,
			})
		}
	}
	if v.DeploymentController == nil {
		v.DeploymentController = &ecs.DeploymentController{Type: ecs.DeploymentControllerTypeECS}
	}
	if v.PropagateTags == "" {
		v.PropagateTags = ecs.PropagateTagsNONE
	}
	return v
}
