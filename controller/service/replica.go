package service

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/capacity"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// replica reconciles a REPLICA service to its desired count within the
// deployment bounds: never fewer than MinHealthy healthy tasks (a stop that
// would go below is not made), never more than MaxTotal tasks not stopped
// (tasks being stopped still count until they have stopped).
//
// Tasks are sorted into:
//   - keep: the primary deployment's tasks on ACTIVE instances;
//   - unhealthy: failing health checks, replaced start-first when the
//     maximum allows, else stop-first one at a time;
//   - retiring: tasks of other deployments, of no deployment, or on draining
//     or vanished instances — replaced, and stopped as the minimum allows
//     (those not yet healthy are stopped at once: stopping them costs no
//     healthy capacity).
func (d *decider) replica() {
	p := d.next.Primary()
	minPct, maxPct := percents(d.next)
	b := DeploymentBounds(int32(d.desired), minPct, maxPct)
	stalled := p.RolloutState == ecs.DeploymentRolloutStateFAILED

	var keep, unhealthy, retiring []*TaskState
	total, healthyAll, healthyKeep := 0, 0, 0
	for _, t := range d.tasks {
		if t.Stopped() {
			continue
		}
		total++
		if t.DesiredStatus == statusStopped {
			continue
		}
		h := d.healthy(t)
		if h {
			healthyAll++
		}
		switch {
		case d.unhealthy(t):
			unhealthy = append(unhealthy, t)
		case t.DeploymentID != p.Id || !d.onActive(t):
			retiring = append(retiring, t)
		default:
			keep = append(keep, t)
			if h {
				healthyKeep++
			}
		}
	}
	budget := healthyAll - b.MinHealthy
	deployReason := fmt.Sprintf("Scaling activity initiated by (deployment %s)", p.Id)

	// Retiring tasks that are not healthy cost nothing to stop. Protected tasks
	// of an old deployment wait for their protection to end.
	for _, t := range retiring {
		if d.healthy(t) || (t.Protected && d.onActive(t)) {
			continue
		}
		d.stop(t, d.retireReason(t, deployReason))
	}

	// Scale in: tasks not yet healthy first (newest first), then the
	// placement engine's choice among the healthy ones.
	if excess := len(keep) - d.desired; excess > 0 {
		pending := slices.DeleteFunc(slices.Clone(keep), func(t *TaskState) bool { return d.healthy(t) })
		slices.SortStableFunc(pending, byCreatedDesc)
		for _, t := range pending {
			if excess == 0 {
				break
			}
			d.stop(t, deployReason)
			excess--
		}
		if n := min(excess, budget); n > 0 {
			for _, id := range d.scaleIn(keep, n, p) {
				d.stop(d.task(id), deployReason)
				budget--
			}
		}
	}

	// Unhealthy tasks: trim once their replacements are healthy; stop one
	// first when there is no room to start a replacement beside it.
	if len(unhealthy) > 0 {
		switch {
		case healthyKeep >= d.desired:
			for _, t := range unhealthy {
				d.stop(t, "Task failed container health checks.")
			}
		case total >= b.MaxTotal || stalled:
			d.stop(unhealthy[0], "Task failed container health checks.")
		}
	}

	// Healthy retiring tasks, as far as the minimum allows: draining
	// instances first, then the oldest deployments.
	if !stalled && budget > 0 {
		cands := slices.Clone(retiring)
		slices.SortStableFunc(cands, func(a, b *TaskState) int {
			return boolRank(d.onActive(a)) - boolRank(d.onActive(b))
		})
		for _, t := range cands {
			if budget == 0 {
				break
			}
			if d.stopping[t.ID] || !d.healthy(t) || (t.Protected && d.onActive(t)) {
				continue
			}
			d.stop(t, d.retireReason(t, deployReason))
			budget--
		}
	}

	if !stalled {
		need := d.desired - len(keep)
		room := b.MaxTotal - total
		if n := d.throttled(min(need, room)); n > 0 {
			d.acts.Launch = append(d.acts.Launch, Launch{DeploymentID: p.Id, Count: n})
		}
	}
	d.stopEvent()
}

func (d *decider) retireReason(t *TaskState, deploy string) string {
	if in := d.inst[t.InstanceID]; in != nil && in.Status == resource.InstanceDraining {
		return "Task stopped because its container instance is draining."
	}
	return deploy
}

// scaleIn picks n of the candidates to stop through the placement engine's
// scale-in choice (it honours task protection and the service's strategy).
//
// With a capacity provider strategy, capacity.Trim first says how many go from
// each provider, so the remaining tasks keep the strategy's base and weights.
func (d *decider) scaleIn(cands []*TaskState, n int, p *resource.Deployment) []string {
	var live []*TaskState
	byProvider := map[string][]*TaskState{}
	counts := map[string]int{}
	for _, t := range cands {
		if d.stopping[t.ID] || !d.healthy(t) {
			continue
		}
		live = append(live, t)
		byProvider[t.CapacityProvider] = append(byProvider[t.CapacityProvider], t)
		counts[t.CapacityProvider]++
	}
	strategy := capacity.FromWire(p.CapacityProviderStrategy)
	if len(strategy) == 0 {
		return d.scaleInAmong(live, n, p)
	}
	quota := map[string]int{}
	for _, name := range capacity.Trim(strategy, counts, n) {
		quota[name]++
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(quota)) {
		out = append(out, d.scaleInAmong(byProvider[name], quota[name], p)...)
	}
	return out
}

// scaleInAmong asks the placement engine for n of cands.
func (d *decider) scaleInAmong(cands []*TaskState, n int, p *resource.Deployment) []string {
	var rts []scheduler.RunningTask
	seen := map[string]bool{}
	var views []scheduler.Instance
	for _, t := range cands {
		rts = append(rts, scheduler.RunningTask{ID: t.ID, InstanceID: t.InstanceID, CPU: t.CPU, Memory: t.Memory, Protected: t.Protected})
		if in := d.inst[t.InstanceID]; in != nil && !seen[in.ID] {
			seen[in.ID] = true
			views = append(views, in.View)
		}
	}
	return scheduler.ScaleIn(rts, views, Strategies(p.PlacementStrategy), n)
}

func (d *decider) task(id string) *TaskState {
	for _, t := range d.tasks {
		if t.ID == id {
			return t
		}
	}
	return &TaskState{ID: id}
}

// Strategies converts wire placement strategies for the scheduler (nil: the
// scheduler's service default).
func Strategies(in []ecs.PlacementStrategy) []scheduler.Strategy {
	if len(in) == 0 {
		return nil
	}
	out := make([]scheduler.Strategy, len(in))
	for i, s := range in {
		out[i] = scheduler.Strategy{Type: string(s.Type), Field: s.Field}
	}
	return out
}

// Constraints converts wire placement constraints for the scheduler.
func Constraints(in []ecs.PlacementConstraint) []scheduler.Constraint {
	out := make([]scheduler.Constraint, 0, len(in))
	for _, c := range in {
		out = append(out, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
