package service

import (
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// Scale-in keeps a capacity provider strategy's ratio: 2 on A and 6 on B
// (1:3) down to 4 stops one of A's and three of B's.
func TestScaleInKeepsStrategyRatio(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	d := &decider{now: now, inst: map[string]*InstanceState{}, stopping: map[string]bool{}}
	var cands []*TaskState
	for i, p := range []string{"A", "A", "B", "B", "B", "B", "B", "B"} {
		cands = append(cands, &TaskState{ID: string(rune('a' + i)), LastStatus: statusRunning, DesiredStatus: statusRunning,
			CapacityProvider: p, OffCluster: true, StartedAt: now.Add(-time.Hour), CreatedAt: now.Add(-time.Hour)})
	}
	d.svc = &resource.Service{}
	d.next = d.svc
	dep := &resource.Deployment{}
	dep.CapacityProviderStrategy = []ecs.CapacityProviderStrategyItem{{CapacityProvider: "A", Weight: 1}, {CapacityProvider: "B", Weight: 3}}
	stopped := map[string]int{}
	for _, id := range d.scaleIn(cands, 4, dep) {
		for _, c := range cands {
			if c.ID == id {
				stopped[c.CapacityProvider]++
			}
		}
	}
	if stopped["A"] != 1 || stopped["B"] != 3 {
		t.Fatalf("stopped %v, want A:1 B:3", stopped)
	}
}
