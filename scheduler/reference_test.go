package scheduler

import (
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ecsd/ecsd/scheduler/cql"
)

// placeSimple is the obviously-correct placement the fast path must agree
// with: for every copy it re-runs the whole pipeline on every instance and
// computes every strategy key from scratch (spread counts by summing over the
// fleet), then takes the minimum. O(copies × instances²); for tests only.
// It is written independently of place.go except for the rules both follow:
// the pipeline order, the keys, and the random draws (one per instance in ID
// order from the seed, advanced by a fresh one each time an instance takes a
// copy).
func placeSimple(instances []Instance, req Request) Plan {
	var plan Plan
	if req.Count <= 0 {
		return plan
	}
	ins := slices.Clone(instances)
	slices.SortStableFunc(ins, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	n := len(ins)
	rng := rand.New(rand.NewPCG(uint64(req.Seed), 0x5eed_ec5d))
	rnd := make([]float64, n)
	for i := range rnd {
		rnd[i] = rng.ExpFloat64()
	}
	placed := make([]int, n)
	task := req.Task
	mode := strings.ToLower(task.NetworkMode)
	if mode == "awsvpc" || mode == "none" {
		task.TCPPorts, task.UDPPorts = nil, nil
	}
	strategies := req.Strategies
	if len(strategies) == 0 {
		strategies = []Strategy{{Type: StrategyRandom}}
	}
	var exprs []*cql.Expr
	var distinct bool
	for _, c := range req.Constraints {
		switch c.Type {
		case ConstraintMemberOf:
			e, _ := cql.Parse(c.Expression)
			exprs = append(exprs, e)
		case ConstraintDistinctInstance:
			distinct = true
		}
	}
	groupOn := func(i int) int { return ins[i].GroupTasks[req.Group] + placed[i] }
	view := func(i int) *cql.Object {
		o := &cql.Object{
			Attributes: ins[i].Attributes, Connected: ins[i].AgentConnected, Version: ins[i].AgentVersion,
			EC2ID: ins[i].EC2InstanceID, Registered: ins[i].RegisteredAt, RunningTasks: ins[i].RunningTasks,
			TaskGroupsByCount: map[string]int{},
		}
		for g, c := range ins[i].GroupTasks {
			o.TaskGroupsByCount[g] = c
		}
		o.TaskGroupsByCount[req.Group] += placed[i]
		return o
	}
	dupOf := func(ports []int32) bool {
		seen := map[int32]bool{}
		for _, p := range ports {
			if seen[p] {
				return true
			}
			seen[p] = true
		}
		return false
	}
	// why returns the reason instance i refuses, "" if it takes the copy, and
	// "-" if it is not ACTIVE (never a candidate, never reported).
	why := func(i int) string {
		in := &ins[i]
		cpuLeft := in.CPU - int64(placed[i])*task.CPU
		memLeft := in.Memory - int64(placed[i])*task.Memory
		switch {
		case in.Status != "ACTIVE":
			return "-"
		case !in.AgentConnected:
			return ReasonAgent
		}
		for _, a := range task.RequiredAttributes {
			if v, ok := in.Attributes[a.Name]; !ok || (a.Value != "" && a.Value != v) {
				return ReasonAttribute
			}
		}
		if _, ok := in.Attributes[TaskENICapability]; mode == "awsvpc" && !ok {
			return ReasonAttribute
		}
		if cpuLeft < task.CPU {
			return ReasonCPU
		}
		if memLeft < task.Memory {
			return ReasonMemory
		}
		if len(task.TCPPorts) > 0 && (placed[i] > 0 || dupOf(task.TCPPorts)) {
			return ReasonPorts
		}
		for _, p := range task.TCPPorts {
			if in.TCPPorts[p] {
				return ReasonPorts
			}
		}
		if len(task.UDPPorts) > 0 && (placed[i] > 0 || dupOf(task.UDPPorts)) {
			return ReasonPortsUDP
		}
		for _, p := range task.UDPPorts {
			if in.UDPPorts[p] {
				return ReasonPortsUDP
			}
		}
		for _, e := range exprs {
			if e == nil || !e.Eval(view(i)) {
				return ReasonMemberOf
			}
		}
		if distinct && groupOn(i) > 0 {
			return ReasonDistinctInstance
		}
		return ""
	}
	// keys computes instance i's sort keys from scratch.
	keys := func(i int) []float64 {
		var k []float64
		for _, s := range strategies {
			switch s.Type {
			case StrategyRandom:
				return append(k, rnd[i])
			case StrategyBinpack:
				if strings.EqualFold(s.Field, "cpu") {
					k = append(k, float64(ins[i].CPU-int64(placed[i])*task.CPU))
				} else {
					k = append(k, float64(ins[i].Memory-int64(placed[i])*task.Memory))
				}
			case StrategySpread:
				if strings.EqualFold(s.Field, "instanceId") || strings.EqualFold(s.Field, "host") {
					k = append(k, float64(groupOn(i)))
					continue
				}
				attr := strings.TrimPrefix(s.Field, "attribute:")
				v, ok := ins[i].Attributes[attr]
				total := 0
				for j := range ins {
					w, ok2 := ins[j].Attributes[attr]
					if ins[j].Status == "ACTIVE" && ok == ok2 && v == w {
						total += groupOn(j)
					}
				}
				k = append(k, float64(total))
			}
		}
		return append(k, rnd[i])
	}
	better := func(i, j int) bool {
		ki, kj := keys(i), keys(j)
		if c := slices.Compare(ki, kj); c != 0 {
			return c < 0
		}
		if rnd[i] != rnd[j] {
			return rnd[i] < rnd[j]
		}
		return i < j
	}
	for c := 0; c < req.Count; c++ {
		best := -1
		for i := range ins {
			if why(i) == "" && (best < 0 || better(i, best)) {
				best = i
			}
		}
		if best < 0 {
			active := false
			for i := range ins {
				r := why(i)
				if r == "-" {
					continue
				}
				active = true
				plan.InstanceFailures = append(plan.InstanceFailures, InstanceFailure{InstanceID: ins[i].ID, ARN: ins[i].ARN, Reason: r})
			}
			for range req.Count - c {
				f := Failure{Reason: ReasonNoInstances}
				if active {
					f.Reason = "?" // the closest instance is checked by the table tests
				}
				plan.Failures = append(plan.Failures, f)
			}
			plan.NoInstances = !active
			break
		}
		placed[best]++
		rnd[best] += rng.ExpFloat64()
		plan.Placements = append(plan.Placements, Placement{InstanceID: ins[best].ID, ARN: ins[best].ARN})
	}
	return plan
}
