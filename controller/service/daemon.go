package service

import (
	"fmt"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// daemon keeps exactly one task of the primary deployment on each ACTIVE
// instance that meets the service's constraints. A new deployment replaces
// the task on each instance stop-first (a daemon's maximum is 100%), within
// the minimum healthy percent of the eligible instances. On a draining
// instance the daemon task stops last: once the instance's other tasks are
// gone. Tasks on instances that left the cluster or no longer meet the
// constraints are stopped.
func (d *decider) daemon() {
	p := d.next.Primary()
	minPct, _ := percents(d.next)
	b := DeploymentBounds(int32(d.desired), minPct, 100)
	stalled := p.RolloutState == ecs.DeploymentRolloutStateFAILED
	deployReason := fmt.Sprintf("Scaling activity initiated by (deployment %s)", p.Id)

	byInst := map[string][]*TaskState{} // not stopped, on each instance
	healthyAll := 0
	for _, t := range d.tasks {
		if t.Stopped() {
			continue
		}
		byInst[t.InstanceID] = append(byInst[t.InstanceID], t)
		if t.DesiredStatus == statusStopped {
			continue
		}
		if d.healthy(t) {
			healthyAll++
		}
		in := d.inst[t.InstanceID]
		switch {
		case in == nil || (in.Status != resource.InstanceActive && in.Status != resource.InstanceDraining):
			d.stop(t, "Task stopped because its container instance left the cluster.")
		case in.Status == resource.InstanceDraining:
			if in.OtherTasks == 0 {
				d.stop(t, "Task stopped because its container instance is draining.")
			}
		case !in.Eligible:
			d.stop(t, "Task stopped because its container instance no longer meets the placement constraints.")
		}
	}
	budget := healthyAll - b.MinHealthy

	for _, in := range d.insts {
		if in.Status != resource.InstanceActive || !in.Eligible {
			continue
		}
		var primary, others []*TaskState
		busy := false // a task on the instance has not stopped yet
		for _, t := range byInst[in.ID] {
			busy = true
			if !d.live(t) {
				continue
			}
			if t.DeploymentID == p.Id && !d.unhealthy(t) {
				primary = append(primary, t)
			} else {
				others = append(others, t)
			}
		}
		// One primary task per instance: the first started stays.
		for _, t := range primary[min(1, len(primary)):] {
			d.stop(t, deployReason)
		}
		if len(primary) > 0 {
			if d.healthy(primary[0]) {
				for _, t := range others {
					d.stop(t, deployReason)
				}
			}
			continue
		}
		for _, t := range others {
			reason := deployReason
			if d.unhealthy(t) {
				reason = "Task failed container health checks."
			}
			switch {
			case !d.healthy(t):
				d.stop(t, reason)
			case !stalled && budget > 0 && !t.Protected:
				d.stop(t, reason)
				budget--
			}
		}
		if !busy && !stalled {
			if d.throttled(1) == 1 {
				d.acts.Launch = append(d.acts.Launch, Launch{DeploymentID: p.Id, Count: 1, InstanceID: in.ID})
			}
		}
	}
	d.stopEvent()
}
