package scheduler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// ECS's failure reasons.
const (
	ReasonCPU         = "RESOURCE:CPU"
	ReasonMemory      = "RESOURCE:MEMORY"
	ReasonPorts       = "RESOURCE:PORTS"
	ReasonPortsUDP    = "RESOURCE:PORTS_UDP"
	ReasonAgent       = "AGENT"
	ReasonAttribute   = "ATTRIBUTE"
	ReasonNoInstances = "No Container Instances were found in your cluster."
	ReasonInactive    = "INACTIVE" // instance not ACTIVE (draining or deregistering)
)

// filter is one stage of the feasibility pipeline: it returns "" when the
// instance passes, or the reason it does not.
type filter struct {
	name string
	fn   func(*Instance, *Task) string
}

// filters run in ECS's order: an instance must be ACTIVE and connected before its
// resources matter, and resources are checked before ports (the cheapest checks
// that reject the most come first).
var filters = []filter{
	{"not ACTIVE", func(in *Instance, _ *Task) string {
		if in.Status != "ACTIVE" {
			return ReasonInactive
		}
		return ""
	}},
	{"agent disconnected", func(in *Instance, _ *Task) string {
		if !in.AgentConnected {
			return ReasonAgent
		}
		return ""
	}},
	{"missing a required attribute", func(in *Instance, t *Task) string {
		for _, a := range t.RequiredAttributes {
			v, ok := in.Attributes[a.Name]
			if !ok || (a.Value != "" && v != a.Value) {
				return ReasonAttribute
			}
		}
		return ""
	}},
	{"lacked CPU", func(in *Instance, t *Task) string {
		if in.CPU < t.CPU {
			return ReasonCPU
		}
		return ""
	}},
	{"lacked memory", func(in *Instance, t *Task) string {
		if in.Memory < t.Memory {
			return ReasonMemory
		}
		return ""
	}},
	{"had a host port in use", func(in *Instance, t *Task) string {
		for _, p := range t.TCPPorts {
			if in.TCPPorts[p] {
				return ReasonPorts
			}
		}
		return ""
	}},
	{"had a UDP host port in use", func(in *Instance, t *Task) string {
		for _, p := range t.UDPPorts {
			if in.UDPPorts[p] {
				return ReasonPortsUDP
			}
		}
		return ""
	}},
}

// Place places req.Count copies of req.Task on instances. It works on private
// copies of the instances' remaining resources, so copies placed earlier in the
// same request are accounted for. Among feasible instances it picks randomly
// (seeded): ECS's RunTask default when no strategy is given.
func Place(instances []Instance, req Request) Plan {
	state := make([]Instance, len(instances))
	for i, in := range instances {
		state[i] = in
		state[i].TCPPorts = copySet(in.TCPPorts)
		state[i].UDPPorts = copySet(in.UDPPorts)
	}
	sort.Slice(state, func(i, j int) bool { return state[i].ID < state[j].ID })
	rng := rand.New(rand.NewPCG(uint64(req.Seed), 0x5eed))
	var plan Plan
	for n := 0; n < req.Count; n++ {
		feasible, failure := feasibleInstances(state, &req.Task)
		if len(feasible) == 0 {
			plan.Failures = append(plan.Failures, failure)
			continue
		}
		in := feasible[rng.IntN(len(feasible))]
		in.CPU -= req.Task.CPU
		in.Memory -= req.Task.Memory
		for _, p := range req.Task.TCPPorts {
			in.TCPPorts[p] = true
		}
		for _, p := range req.Task.UDPPorts {
			in.UDPPorts[p] = true
		}
		in.RunningTasks++
		plan.Placements = append(plan.Placements, Placement{InstanceID: in.ID})
	}
	return plan
}

// feasibleInstances runs the filter pipeline and, when nothing passes, explains
// why with ECS's reason for the stage that rejected the most instances and a
// count per stage.
func feasibleInstances(state []Instance, t *Task) ([]*Instance, Failure) {
	var out []*Instance
	rejected := make([]int, len(filters))
	reasons := make([]string, len(filters))
next:
	for i := range state {
		in := &state[i]
		for f, flt := range filters {
			if r := flt.fn(in, t); r != "" {
				rejected[f]++
				reasons[f] = r
				continue next
			}
		}
		out = append(out, in)
	}
	if len(out) > 0 {
		return out, Failure{}
	}
	if len(state) == 0 {
		return nil, Failure{Reason: ReasonNoInstances, Detail: "the cluster has no container instances"}
	}
	// ECS reports the reason of the last stage an instance reached, which is the
	// most specific one; the detail gives every stage.
	best := -1
	var parts []string
	for f := range filters {
		if rejected[f] == 0 {
			continue
		}
		best = f
		parts = append(parts, fmt.Sprintf("%d %s", rejected[f], filters[f].name))
	}
	reason := reasons[best]
	if reason == ReasonInactive {
		reason = ReasonAgent
	}
	return nil, Failure{Reason: reason, Detail: fmt.Sprintf("%d instances: %s", len(state), strings.Join(parts, ", "))}
}

func copySet(m map[int32]bool) map[int32]bool {
	out := make(map[int32]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
