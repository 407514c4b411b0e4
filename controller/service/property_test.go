package service

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// TestDecideProperties drives the decider through random sequences of task
// failures, health flips, scale changes, draining and deployments (good and
// bad, with and without the circuit breaker). Every pass is checked against
// the bounds (world.check: never more than the maximum started, never a
// healthy task stopped below the minimum); once the chaos ends the service
// must converge to its steady state.
func TestDecideProperties(t *testing.T) {
	percents := [][2]int32{{100, 200}, {50, 200}, {50, 100}, {0, 100}, {75, 125}, {100, 150}, {0, 200}, {100, 100}}
	runs := 300
	if testing.Short() {
		runs = 50
	}
	for seed := 0; seed < runs; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		pc := percents[r.IntN(len(percents))]
		name := fmt.Sprintf("seed%d-%d-%d", seed, pc[0], pc[1])
		ok := t.Run(name, func(t *testing.T) {
			w := newWorld(t, int32(r.IntN(8)), 2+r.IntN(4))
			w.hc = r.IntN(2) == 0
			daemon := r.IntN(6) == 0
			if daemon {
				w.svc.SchedulingStrategy = ecs.SchedulingStrategyDAEMON
				pc = [2]int32{int32(r.IntN(2)) * 50, 100}
			}
			w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{
				MinimumHealthyPercent: ptr(pc[0]), MaximumPercent: ptr(pc[1]),
				DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{Enable: r.IntN(2) == 0, Rollback: r.IntN(2) == 0},
			}
			for step := 0; step < 60; step++ {
				w.decide()
				if r.IntN(3) > 0 {
					w.progress()
				}
				w.random(r)
				switch x := r.IntN(40); {
				case x == 0 && !daemon:
					w.svc.DesiredCount = int32(r.IntN(10))
					w.svc.Generation++
				case x == 1:
					id := w.deploy(fmt.Sprintf("td:%d", step))
					w.bad[id] = r.IntN(3) == 0
				case x == 2:
					i := r.IntN(len(w.insts))
					w.insts[i].Status = resource.InstanceDraining
				case x == 3:
					i := r.IntN(len(w.insts))
					w.insts[i].Status = resource.InstanceActive
				case x == 4:
					for i := range w.tasks {
						if !w.tasks[i].Stopped() && r.IntN(4) == 0 {
							w.tasks[i].Protected = !w.tasks[i].Protected
						}
					}
				}
				w.now = w.now.Add(time.Duration(r.IntN(30)) * time.Second)
			}
			// Calm: instances back, protection off, faults healed; a
			// stalled (FAILED) or bad deployment is replaced by a good one.
			for i := range w.insts {
				w.insts[i].Status = resource.InstanceActive
			}
			for i := range w.tasks {
				w.tasks[i].Protected = false
				if !w.tasks[i].Stopped() && w.tasks[i].Health == ecs.HealthStatusUNHEALTHY {
					w.tasks[i].Health = ecs.HealthStatusHEALTHY
				}
			}
			if p := w.svc.Primary(); p.RolloutState == ecs.DeploymentRolloutStateFAILED || w.bad[p.Id] {
				w.deploy("td:good")
			}
			w.settle(80)
			if !w.stable() {
				running, pending, total := w.counts()
				t.Fatalf("did not converge: desired %d running %d pending %d total %d rollouts %d (%s %s) throttle %+v events %q",
					w.svc.DesiredCount, running, pending, total, len(w.svc.Rollouts), w.svc.Primary().RolloutState,
					w.svc.Primary().RolloutStateReason, w.svc.Throttle, last(w.events, 8))
			}
		})
		if !ok {
			break
		}
	}
}

func last(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
