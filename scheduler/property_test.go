package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomFleet builds n instances with random sizes, zones, racks, ports,
// statuses and existing tasks of a few groups.
func randomFleet(r *rand.Rand, n int, full bool) []Instance {
	zones := []string{"a", "b", "c"}
	types := []string{"t3.small", "m5.large", "c5.xlarge"}
	out := make([]Instance, n)
	for i := range out {
		in := inst(fmt.Sprintf("i-%03d", r.IntN(1000)*1000+i), int64(256*(1+r.IntN(16))), int64(512*(1+r.IntN(16))),
			"ecs.availability-zone="+zones[r.IntN(len(zones))], "ecs.instance-type="+types[r.IntN(len(types))])
		if r.IntN(4) > 0 {
			in.Attributes["rack"] = fmt.Sprint(r.IntN(3))
		}
		if r.IntN(3) == 0 {
			in.Attributes[TaskENICapability] = ""
		}
		if r.IntN(4) == 0 {
			in.TCPPorts[80] = true
		}
		if r.IntN(6) == 0 {
			in.UDPPorts[53] = true
		}
		for _, g := range []string{"g", "h"} {
			if r.IntN(3) == 0 {
				in.GroupTasks[g] = r.IntN(3)
			}
		}
		in.RunningTasks = r.IntN(5)
		if full {
			switch r.IntN(12) {
			case 0:
				in.Status = "DRAINING"
			case 1:
				in.AgentConnected = false
			}
		}
		out[i] = in
	}
	return out
}

var strategyPool = []Strategy{
	spread(az), spread("instanceId"), spread("attribute:rack"), spread("host"),
	binpack("memory"), binpack("cpu"), {Type: StrategyRandom},
}

var constraintPool = []Constraint{
	distinctInstance,
	memberOf("attribute:ecs.instance-type =~ (m5|c5).*"),
	memberOf("attribute:ecs.availability-zone != c"),
	memberOf("not(task:group == h)"),
	memberOf("task:group != g or runningTasksCount < 2"),
	memberOf("attribute:rack exists and attribute:rack in [0, 1]"),
}

func randomRequest(r *rand.Rand) Request {
	req := Request{
		Task:  Task{CPU: int64(128 * (1 + r.IntN(8))), Memory: int64(256 * (1 + r.IntN(8))), NetworkMode: []string{"", "bridge", "host", "awsvpc"}[r.IntN(4)]},
		Count: 1 + r.IntN(60),
		Group: []string{"g", "h", "k"}[r.IntN(3)],
		Seed:  r.Int64(),
	}
	switch r.IntN(5) {
	case 0:
		req.Task.TCPPorts = []int32{80}
	case 1:
		req.Task.UDPPorts = []int32{53}
	case 2:
		req.Task.TCPPorts = []int32{8080, 8080}
	}
	if r.IntN(4) == 0 {
		req.Task.RequiredAttributes = []Attribute{{Name: "rack"}}
	}
	for range r.IntN(4) {
		req.Strategies = append(req.Strategies, strategyPool[r.IntN(len(strategyPool))])
	}
	for range r.IntN(3) {
		req.Constraints = append(req.Constraints, constraintPool[r.IntN(len(constraintPool))])
	}
	return req
}

// TestFastAgreesWithSimple compares the indexed placement with the
// from-scratch one on random fleets and requests.
func TestFastAgreesWithSimple(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 400 {
		fleet := randomFleet(r, 1+r.IntN(40), true)
		req := randomRequest(r)
		fast, simple := Place(fleet, req), placeSimple(fleet, req)
		if !slices.Equal(ids(fast), ids(simple)) {
			t.Fatalf("iteration %d, %+v:\nfast   %v\nsimple %v", iter, req, ids(fast), ids(simple))
		}
		if len(fast.Failures) != len(simple.Failures) || fast.NoInstances != simple.NoInstances {
			t.Fatalf("iteration %d: failures %d vs %d", iter, len(fast.Failures), len(simple.Failures))
		}
		var fr, sr []string
		for i := range fast.InstanceFailures {
			fr = append(fr, fast.InstanceFailures[i].InstanceID+" "+fast.InstanceFailures[i].Reason)
		}
		for i := range simple.InstanceFailures {
			sr = append(sr, simple.InstanceFailures[i].InstanceID+" "+simple.InstanceFailures[i].Reason)
		}
		if !slices.Equal(fr, sr) {
			t.Fatalf("iteration %d: instance failures\nfast   %v\nsimple %v", iter, fr, sr)
		}
	}
}

// TestInvariants checks, on larger random fleets, what must hold whatever the
// strategies: no over-commit, constraints hold, every unplaced copy has a
// failure, and an unplaced copy means no instance could take it.
func TestInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 200 {
		fleet := randomFleet(r, 1+r.IntN(300), true)
		req := randomRequest(r)
		req.Count = 1 + r.IntN(400)
		plan := Place(fleet, req)
		if len(plan.Placements)+len(plan.Failures) != req.Count {
			t.Fatalf("iteration %d: %d placed + %d failed != %d", iter, len(plan.Placements), len(plan.Failures), req.Count)
		}
		byID := map[string]*Instance{}
		for i := range fleet {
			byID[fleet[i].ID] = &fleet[i]
		}
		per := map[string]int{}
		for _, p := range plan.Placements {
			per[p.InstanceID]++
		}
		ports := req.Task.NetworkMode != "awsvpc" && req.Task.NetworkMode != "none"
		for id, k := range per {
			in := byID[id]
			if in.Status != "ACTIVE" || !in.AgentConnected {
				t.Fatalf("iteration %d: placed on %s (%s, connected %v)", iter, id, in.Status, in.AgentConnected)
			}
			if int64(k)*req.Task.CPU > in.CPU || int64(k)*req.Task.Memory > in.Memory {
				t.Fatalf("iteration %d: %d copies over-commit %s (cpu %d mem %d)", iter, k, id, in.CPU, in.Memory)
			}
			if ports && len(req.Task.TCPPorts)+len(req.Task.UDPPorts) > 0 {
				if k > 1 {
					t.Fatalf("iteration %d: %d copies with static ports on %s", iter, k, id)
				}
				for _, p := range req.Task.TCPPorts {
					if in.TCPPorts[p] {
						t.Fatalf("iteration %d: TCP port %d double-booked on %s", iter, p, id)
					}
				}
				for _, p := range req.Task.UDPPorts {
					if in.UDPPorts[p] {
						t.Fatalf("iteration %d: UDP port %d double-booked on %s", iter, p, id)
					}
				}
			}
			for _, c := range req.Constraints {
				if c.Type == ConstraintDistinctInstance && (k > 1 || in.GroupTasks[req.Group] > 0) {
					t.Fatalf("iteration %d: distinctInstance broken on %s", iter, id)
				}
			}
		}
		if len(plan.Failures) > 0 {
			// Nothing can take one more copy: replay the plan and ask again.
			after := deepCopy(fleet)
			for i := range after {
				k := per[after[i].ID]
				after[i].CPU -= int64(k) * req.Task.CPU
				after[i].Memory -= int64(k) * req.Task.Memory
				after[i].GroupTasks[req.Group] += k
				if ports && k > 0 {
					for _, p := range req.Task.TCPPorts {
						after[i].TCPPorts[p] = true
					}
					for _, p := range req.Task.UDPPorts {
						after[i].UDPPorts[p] = true
					}
				}
			}
			one := req
			one.Count = 1
			if p := Place(after, one); len(p.Placements) != 0 {
				t.Fatalf("iteration %d: a copy failed but %s could take it", iter, p.Placements[0].InstanceID)
			}
		}
	}
}

// TestSpreadStaysEven: with room everywhere, spread over one field keeps its
// values within one task of each other, starting from none.
func TestSpreadStaysEven(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := range 100 {
		fleet := randomFleet(r, 3+r.IntN(100), false)
		for i := range fleet {
			fleet[i].CPU, fleet[i].Memory = 1<<20, 1<<20
			clear(fleet[i].GroupTasks)
		}
		field := []string{az, "attribute:rack", "instanceId"}[r.IntN(3)]
		req := Request{Task: Task{CPU: 1, Memory: 1}, Count: 1 + r.IntN(500), Group: "g", Seed: r.Int64(),
			Strategies: []Strategy{spread(field), strategyPool[r.IntN(len(strategyPool))]}}
		plan := Place(fleet, req)
		counts := map[string]int{}
		values := map[string]bool{}
		byID := map[string]*Instance{}
		for i := range fleet {
			byID[fleet[i].ID] = &fleet[i]
			values[valueOf(&fleet[i], field)] = true
		}
		for v := range values {
			counts[v] = 0
		}
		for _, p := range plan.Placements {
			counts[valueOf(byID[p.InstanceID], field)]++
		}
		lo, hi := req.Count, 0
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			t.Fatalf("iteration %d: spread(%s) uneven: %v", iter, field, counts)
		}
	}
}

func valueOf(in *Instance, field string) string {
	if field == "instanceId" {
		return in.ID
	}
	v, ok := in.Attributes[field[len("attribute:"):]]
	if !ok {
		return "\x00missing"
	}
	return v
}

// TestBinpackNeverOpensNewInstance: on equal instances, binpack only starts an
// empty instance when no used one can take the copy.
func TestBinpackNeverOpensNewInstance(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := range 100 {
		n := 2 + r.IntN(50)
		var fleet []Instance
		for i := range n {
			fleet = append(fleet, inst(fmt.Sprintf("i-%03d", i), 4096, 8192))
		}
		field := []string{"memory", "cpu"}[r.IntN(2)]
		req := Request{Task: Task{CPU: int64(64 * (1 + r.IntN(32))), Memory: int64(128 * (1 + r.IntN(32)))},
			Count: 1 + r.IntN(300), Seed: r.Int64(), Strategies: []Strategy{binpack(field)}}
		plan := Place(fleet, req)
		used := map[string]int{}
		for _, p := range plan.Placements {
			if used[p.InstanceID] == 0 {
				for id, k := range used {
					if 4096-int64(k)*req.Task.CPU >= req.Task.CPU && 8192-int64(k)*req.Task.Memory >= req.Task.Memory {
						t.Fatalf("iteration %d: opened %s while %s (%d tasks) had room", iter, p.InstanceID, id, k)
					}
				}
			}
			used[p.InstanceID]++
		}
	}
}

// TestDeterministic: the same request on the same fleet gives the same plan.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 50 {
		fleet := randomFleet(r, 50, true)
		req := randomRequest(r)
		if a, b := Place(fleet, req), Place(deepCopy(fleet), req); !reflect.DeepEqual(a, b) {
			t.Fatal("two runs differ")
		}
	}
}
