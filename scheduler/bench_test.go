package scheduler_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/scheduler/cql"
	"github.com/ecsd/ecsd/scheduler/simfleet"
)

// The benchmark: spread by zone, binpack memory inside each zone, and
// a memberOf constraint, on a mixed fleet with custom attributes.
func benchFleet(n int) []scheduler.Instance {
	return simfleet.New(simfleet.Config{
		Instances: n,
		Seed:      1,
		Attributes: map[string][]string{
			"stack": {"prod", "prod", "prod", "staging"},
			"rack":  {"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"},
			"team":  {"payments", "search", "ads"},
		},
	})
}

func benchRequest(count int, seed int64) scheduler.Request {
	return scheduler.Request{
		Task:  scheduler.Task{CPU: 100, Memory: 256},
		Count: count,
		Group: "service:bench",
		Seed:  seed,
		Strategies: []scheduler.Strategy{
			{Type: scheduler.StrategySpread, Field: "attribute:ecs.availability-zone"},
			{Type: scheduler.StrategyBinpack, Field: "memory"},
		},
		Constraints: []scheduler.Constraint{
			{Type: scheduler.ConstraintMemberOf, Expression: "attribute:ecs.instance-type =~ (m5|c5|r5)\\..*"},
		},
	}
}

func reportRate(b *testing.B, placements int) {
	b.ReportMetric(float64(placements)/b.Elapsed().Seconds(), "placements/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placements), "ns/placement")
}

// BenchmarkPlace100k places 100,000 copies onto 5,000 instances in one
// request (a service scaling out), placement only.
func BenchmarkPlace100k(b *testing.B) {
	fleet := benchFleet(5000)
	b.ReportAllocs()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	placed := 0
	for i := 0; i < b.N; i++ {
		plan := scheduler.Place(fleet, benchRequest(100_000, int64(i)))
		if len(plan.Failures) > 0 {
			b.Fatalf("%d failures: %+v", len(plan.Failures), plan.Failures[0])
		}
		placed += len(plan.Placements)
	}
	b.StopTimer()
	reportRate(b, placed)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MiB-alloc/op")
}

// BenchmarkPlaceBatches runs 100,000 placements onto 5,000 instances as 100
// requests of 1,000, each charged to the fleet before the next (as the
// planner commits them).
func BenchmarkPlaceBatches(b *testing.B) {
	b.ReportAllocs()
	placed := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := simfleet.NewFleet(simfleet.Config{Instances: 5000, Seed: 1, Attributes: map[string][]string{"stack": {"prod"}}})
		b.StartTimer()
		for batch := range 100 {
			req := benchRequest(1000, int64(batch))
			plan := scheduler.Place(f.Instances, req)
			placed += len(plan.Placements)
			b.StopTimer()
			f.Apply(req, plan)
			b.StartTimer()
		}
	}
	reportRate(b, placed)
}

// BenchmarkPlaceGrowth shows how the cost grows with the fleet: one request
// of 10,000 copies, and RunTask-sized requests of 10 copies.
func BenchmarkPlaceGrowth(b *testing.B) {
	for _, n := range []int{500, 5000, 20000} {
		fleet := benchFleet(n)
		b.Run(fmt.Sprintf("instances=%d/copies=10000", n), func(b *testing.B) {
			b.ReportAllocs()
			placed := 0
			for i := 0; i < b.N; i++ {
				placed += len(scheduler.Place(fleet, benchRequest(10_000, int64(i))).Placements)
			}
			reportRate(b, placed)
		})
		b.Run(fmt.Sprintf("instances=%d/copies=10", n), func(b *testing.B) {
			b.ReportAllocs()
			placed := 0
			for i := 0; i < b.N*100; i++ {
				placed += len(scheduler.Place(fleet, benchRequest(10, int64(i))).Placements)
			}
			reportRate(b, placed)
		})
	}
}

// BenchmarkScaleIn picks 10,000 of 100,000 tasks to stop on 5,000 instances.
func BenchmarkScaleIn(b *testing.B) {
	f := simfleet.NewFleet(simfleet.Config{Instances: 5000, Seed: 1})
	req := benchRequest(100_000, 1)
	req.Constraints = nil
	req.Strategies = scheduler.DefaultServiceStrategy()
	f.Run(req)
	tasks := f.RunningTasks(req.Group)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := scheduler.ScaleIn(tasks, f.Instances, nil, 10_000); len(got) != 10_000 {
			b.Fatalf("chose %d", len(got))
		}
	}
}

// BenchmarkCQLEval evaluates a three-part expression (pattern, inequality,
// task-group anti-affinity) 10,000 times per iteration.
func BenchmarkCQLEval(b *testing.B) {
	e, err := cql.Parse("attribute:ecs.instance-type =~ (m5|c5|r5)\\..* and attribute:stack != staging and not(task:group == service:db)")
	if err != nil {
		b.Fatal(err)
	}
	in := benchFleet(1)[0]
	t := in.Target()
	e.Eval(t)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 10_000 {
			e.Eval(t)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10_000), "ns/eval")
}
