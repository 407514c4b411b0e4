package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestScaleIn(t *testing.T) {
	zoned := []Instance{
		inst("a1", 0, 0, "ecs.availability-zone=a"),
		inst("b1", 0, 0, "ecs.availability-zone=b"),
		inst("c1", 0, 0, "ecs.availability-zone=c"), inst("c2", 0, 0, "ecs.availability-zone=c"),
	}
	// Zone a has one task, b and c two each (ECS's example): b or c first,
	// and there the instance with the most tasks.
	zonedTasks := []RunningTask{
		{ID: "t1", InstanceID: "a1"},
		{ID: "t2", InstanceID: "b1"}, {ID: "t3", InstanceID: "b1"},
		{ID: "t4", InstanceID: "c1"}, {ID: "t5", InstanceID: "c2"},
	}
	packed := []Instance{inst("x", 4000, 1000), inst("y", 4096, 5000)}
	packedTasks := []RunningTask{
		{ID: "t1", InstanceID: "x", Memory: 512, CPU: 100},
		{ID: "t2", InstanceID: "y", Memory: 512, CPU: 100},
		{ID: "t3", InstanceID: "y", Memory: 1024, CPU: 50},
	}
	cases := []struct {
		name       string
		tasks      []RunningTask
		instances  []Instance
		strategies []Strategy
		n          int
		want       []string
	}{
		{"default: zone with most, then instance with most", zonedTasks, zoned, nil, 3, []string{"t2", "t4", "t1"}},
		{"explicit service default", zonedTasks, zoned, DefaultServiceStrategy(), 5, []string{"t2", "t4", "t1", "t3", "t5"}},
		{"spread instanceId only", zonedTasks, zoned, []Strategy{spread("instanceId")}, 2, []string{"t2", "t1"}},
		{"binpack memory: most memory left afterwards", packedTasks, packed, []Strategy{binpack("memory")}, 3, []string{"t3", "t2", "t1"}},
		{"binpack cpu", packedTasks, packed, []Strategy{binpack("cpu")}, 1, []string{"t2"}},
		{"more than there are", packedTasks, packed, []Strategy{binpack("memory")}, 10, []string{"t3", "t2", "t1"}},
		{"protected tasks are never chosen",
			[]RunningTask{{ID: "t1", InstanceID: "a1", Protected: true}, {ID: "t2", InstanceID: "b1"}}, zoned, nil, 2, []string{"t2"}},
		{"protected tasks still count for the spread",
			[]RunningTask{{ID: "t1", InstanceID: "a1", Protected: true}, {ID: "t2", InstanceID: "a1"}, {ID: "t3", InstanceID: "b1"}}, zoned, nil, 1, []string{"t2"}},
		{"unknown instances form a value of their own",
			[]RunningTask{{ID: "t1", InstanceID: "gone"}, {ID: "t2", InstanceID: "gone"}, {ID: "t3", InstanceID: "a1"}}, zoned, nil, 1, []string{"t1"}},
		{"nothing to do", zonedTasks, zoned, nil, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ScaleIn(c.tasks, c.instances, c.strategies, c.n)
			if !slices.Equal(got, c.want) {
				t.Errorf("ScaleIn = %v, want %v", got, c.want)
			}
		})
	}
}

func TestScaleInRandom(t *testing.T) {
	var tasks []RunningTask
	for i := range 20 {
		tasks = append(tasks, RunningTask{ID: fmt.Sprintf("t%02d", i), InstanceID: fmt.Sprintf("i%d", i%4)})
	}
	rnd := []Strategy{{Type: StrategyRandom}}
	a, b := ScaleIn(tasks, nil, rnd, 7), ScaleIn(tasks, nil, rnd, 7)
	if !slices.Equal(a, b) || len(a) != 7 {
		t.Fatalf("random scale-in not repeatable: %v %v", a, b)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] {
			t.Fatalf("%s chosen twice", id)
		}
		seen[id] = true
	}
	if slices.IsSorted(a) {
		t.Errorf("random order is the ID order: %v", a)
	}
}

// TestScaleInKeepsSpread: a service placed with spread by zone, then shrunk,
// stays within one task of even per zone.
func TestScaleInKeepsSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for iter := range 50 {
		fleet := randomFleet(r, 6+r.IntN(40), false)
		for i := range fleet {
			fleet[i].CPU, fleet[i].Memory = 1<<20, 1<<20
			clear(fleet[i].GroupTasks)
		}
		req := Request{Task: Task{CPU: 1, Memory: 1}, Count: 10 + r.IntN(100), Group: "service:web", Seed: r.Int64(), Strategies: DefaultServiceStrategy()}
		plan := Place(fleet, req)
		var tasks []RunningTask
		for i, p := range plan.Placements {
			tasks = append(tasks, RunningTask{ID: fmt.Sprintf("t%04d", i), InstanceID: p.InstanceID, Protected: r.IntN(10) == 0})
		}
		stop := ScaleIn(tasks, fleet, nil, r.IntN(len(tasks)))
		gone := map[string]bool{}
		for _, id := range stop {
			gone[id] = true
		}
		zoneOf := map[string]string{}
		zones := map[string]int{}
		for _, in := range fleet {
			zoneOf[in.ID] = in.Attributes["ecs.availability-zone"]
			zones[zoneOf[in.ID]] = 0
		}
		protected := 0
		for _, tk := range tasks {
			if tk.Protected {
				protected++
			}
			if !gone[tk.ID] {
				zones[zoneOf[tk.InstanceID]]++
			}
		}
		lo, hi := len(tasks), 0
		for _, c := range zones {
			lo, hi = min(lo, c), max(hi, c)
		}
		if protected == 0 && hi-lo > 1 {
			t.Fatalf("iteration %d: zones uneven after scale-in: %v", iter, zones)
		}
	}
}

// scaleInSimple recomputes every key of every candidate task for each pick.
func scaleInSimple(tasks []RunningTask, instances []Instance, strategies []Strategy, n int) []string {
	if len(strategies) == 0 {
		strategies = DefaultServiceStrategy()
	}
	byID := map[string]*Instance{}
	for i := range instances {
		byID[instances[i].ID] = &instances[i]
	}
	gone := map[string]bool{}
	value := func(t *RunningTask, attr string) string {
		if in := byID[t.InstanceID]; in != nil {
			if v, ok := in.Attributes[attr]; ok {
				return v
			}
		}
		return "\x00"
	}
	left := func(t *RunningTask, mem bool) int64 {
		var r int64
		if in := byID[t.InstanceID]; in != nil {
			r = in.CPU
			if mem {
				r = in.Memory
			}
		}
		for i := range tasks {
			o := &tasks[i]
			if gone[o.ID] && o.InstanceID == t.InstanceID {
				if mem {
					r += o.Memory
				} else {
					r += o.CPU
				}
			}
		}
		if mem {
			return r + t.Memory
		}
		return r + t.CPU
	}
	// keys: larger first, so negate.
	keys := func(t *RunningTask) []float64 {
		var k []float64
		for _, s := range strategies {
			switch {
			case s.Type == StrategyRandom:
				return append(k, float64(taskHash(t.ID)))
			case s.Type == StrategyBinpack:
				k = append(k, -float64(left(t, s.Field == "memory")))
			case s.Field == "instanceId" || s.Field == "host":
				c := 0
				for i := range tasks {
					if !gone[tasks[i].ID] && tasks[i].InstanceID == t.InstanceID {
						c++
					}
				}
				k = append(k, -float64(c))
			default:
				attr := s.Field[len("attribute:"):]
				c := 0
				for i := range tasks {
					if !gone[tasks[i].ID] && value(&tasks[i], attr) == value(t, attr) {
						c++
					}
				}
				k = append(k, -float64(c))
			}
		}
		return k
	}
	var out []string
	for len(out) < n {
		var best *RunningTask
		for i := range tasks {
			t := &tasks[i]
			if gone[t.ID] || t.Protected {
				continue
			}
			if best == nil {
				best = t
				continue
			}
			c := slices.Compare(keys(t), keys(best))
			if c < 0 || (c == 0 && t.ID < best.ID) {
				best = t
			}
		}
		if best == nil {
			break
		}
		gone[best.ID] = true
		out = append(out, best.ID)
	}
	return out
}

func TestScaleInAgreesWithSimple(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for iter := range 300 {
		fleet := randomFleet(r, 1+r.IntN(12), false)
		var tasks []RunningTask
		for i := range r.IntN(40) {
			tasks = append(tasks, RunningTask{ID: fmt.Sprintf("t%03d", r.IntN(1000)*100+i), InstanceID: fleet[r.IntN(len(fleet))].ID,
				CPU: int64(r.IntN(4) * 128), Memory: int64(r.IntN(4) * 256), Protected: r.IntN(8) == 0})
		}
		if r.IntN(5) == 0 && len(tasks) > 0 {
			tasks[0].InstanceID = "unknown"
		}
		var strategies []Strategy
		for range r.IntN(4) {
			s := strategyPool[r.IntN(len(strategyPool))]
			if s.Field == "host" {
				s.Field = "instanceId"
			}
			strategies = append(strategies, s)
		}
		n := r.IntN(len(tasks) + 2)
		got, want := ScaleIn(tasks, fleet, strategies, n), scaleInSimple(tasks, fleet, strategies, n)
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d, %v:\nfast   %v\nsimple %v", iter, strategies, got, want)
		}
	}
}
