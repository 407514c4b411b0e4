package planner

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/capacity"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// TargetCount is how many copies of a launch go to one target.
type TargetCount struct {
	Target Target
	Count  int
}

// SplitTargets divides n copies over a launch's targets: all to the launch
// type, or over the capacity provider strategy by base and weight, given the
// copies each provider already holds (a service's tasks; nil for RunTask).
// Copies keep the order Split gives; targets appear in strategy order.
func SplitTargets(lt ecs.LaunchType, strategy []capacity.Item, current map[string]int, n int) []TargetCount {
	if len(strategy) == 0 {
		if n <= 0 {
			return nil
		}
		return []TargetCount{{Target: Target{LaunchType: lt}, Count: n}}
	}
	counts := map[string]int{}
	for _, p := range capacity.Split(strategy, current, n) {
		counts[p]++
	}
	var out []TargetCount
	for _, it := range strategy {
		if k := counts[it.Provider]; k > 0 {
			out = append(out, TargetCount{Target: Target{CapacityProvider: it.Provider}, Count: k})
		}
	}
	return out
}

// Waits reports whether a copy for t that fits nowhere is created anyway, to
// wait in PROVISIONING for capacity (capacity providers and the Fargate pool),
// rather than failing placement (EC2 and EXTERNAL launch types).
func (t Target) Waits() bool { return t.CapacityProvider != "" || t.Fargate() }

// Placement is one copy's outcome: placed on Instance, or waiting (Instance nil).
type Placement struct {
	Target   Target
	Instance *resource.ContainerInstance
}

// Spread is the outcome of placing a launch over its targets.
type Spread struct {
	Copies []Placement
	// Plans are the scheduler's plans per target, for failure explanations of
	// copies that neither placed nor wait.
	Plans []scheduler.Plan
	// Candidates counts the instances the targets offered; FargateCandidates
	// those of the Fargate pool.
	Candidates, FargateCandidates int
	// FargateTargets reports whether any target is the Fargate pool.
	FargateTargets bool
}

// PlaceSpread places req (its Count is ignored) over targets in snap.
func PlaceSpread(snap *cache.Snapshot, scope resource.Scope, cluster string, targets []TargetCount, req scheduler.Request, now time.Time, agentTimeout time.Duration) Spread {
	var out Spread
	for _, tc := range targets {
		cands := ListCandidates(snap, scope, cluster, tc.Target, now, agentTimeout)
		out.Candidates += len(cands.Views)
		if tc.Target.Fargate() {
			out.FargateTargets = true
			out.FargateCandidates += len(cands.Views)
		}
		r := req
		r.Count = tc.Count
		p := scheduler.Place(cands.Views, r)
		out.Plans = append(out.Plans, p)
		for _, pl := range p.Placements {
			out.Copies = append(out.Copies, Placement{Target: tc.Target, Instance: cands.Instances[pl.InstanceID]})
		}
		if tc.Target.Waits() {
			for range tc.Count - len(p.Placements) {
				out.Copies = append(out.Copies, Placement{Target: tc.Target})
			}
		}
	}
	return out
}
