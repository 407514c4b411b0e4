// Package capacity is ECS managed scaling for node-group capacity providers:
// it computes each provider's CapacityProviderReservation and drives its node
// group's desired count by target tracking, and it keeps managed termination
// protection on the group's nodes.
//
//	snapshot ──Gather──▶ Inputs ──Decide(now)──▶ Decision ──CAS writes──▶ node group (Desired,
//	                                                                      LastScalingAt, node
//	                                                                      protection), provider
//	                                                                      (Reservation)
//
// Decide is pure; the Controller does the I/O. The node group controller
// launches and terminates nodes to match Desired.
package capacity

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// ECS's defaults for a managedScaling block's omitted fields.
const (
	DefaultTargetCapacity = 100
	DefaultMinStep        = 1
	DefaultMaxStep        = 10000
	DefaultWarmup         = 300 * time.Second
)

// Scaling is a provider's managedScaling settings (zero values take ECS's
// defaults).
type Scaling struct {
	Enabled bool
	// TargetCapacity is the reservation (percent, 1–100) target tracking aims at.
	TargetCapacity int
	// MinStep and MaxStep bound how many instances one scale-out adds.
	MinStep, MaxStep int
	// Warmup is instanceWarmupPeriod: a node launched less than this long ago
	// and not yet registered holds further scale-outs.
	Warmup time.Duration
}

func (s Scaling) withDefaults() Scaling {
	if s.TargetCapacity <= 0 || s.TargetCapacity > 100 {
		s.TargetCapacity = DefaultTargetCapacity
	}
	if s.MinStep <= 0 {
		s.MinStep = DefaultMinStep
	}
	if s.MaxStep <= 0 {
		s.MaxStep = DefaultMaxStep
	}
	if s.Warmup < 0 {
		s.Warmup = 0
	}
	return s
}

// Group is the node group as scaling sees it.
type Group struct {
	Min, Max, Desired int
	// Nodes are the group's machines: Pending ones are being launched.
	Nodes []resource.Node
}

// Instance is one registered (not INACTIVE) container instance of the
// provider.
type Instance struct {
	// View is what placement sees: the room left after its placed tasks.
	View scheduler.Instance
	// NodeID is the group node the instance runs on ("" if none matched).
	NodeID string
	// Busy counts its placed, not STOPPED tasks that are not daemon tasks: an
	// instance with none is idle.
	Busy int
}

// Demand is one task waiting for capacity (PROVISIONING, unplaced).
type Demand struct {
	TaskID      string
	Task        scheduler.Task
	Group       string
	Constraints []scheduler.Constraint
}

// Inputs is everything one provider's decision depends on.
type Inputs struct {
	Provider              string
	Scaling               Scaling
	TerminationProtection bool
	Group                 Group
	Instances             []Instance
	Waiting               []Demand
	// NewNode is what a node that does not exist yet will offer (the group's
	// template): see TemplateView.
	NewNode scheduler.Instance
	// BelowSince is when the reservation went below target and has stayed
	// there (zero if it is not below); the previous Decision's BelowSince.
	BelowSince time.Time
	// ScaleInDelay is how long the reservation must stay below target before
	// the group shrinks.
	ScaleInDelay time.Duration
}

// Decision is the outcome for one provider. Desired == Current means the
// group's size is left alone.
type Decision struct {
	// N is instances running (registered plus Pending nodes), M instances
	// needed; Reservation is M/N in percent.
	N, M        int
	Reservation float64
	// Waiting is the number of waiting tasks; Fresh how many instances
	// beyond N they need; Unfit how many fit not even an empty node.
	Waiting, Fresh, Unfit int
	// NonIdle is the number of instances running a non-daemon task: scale-in
	// never goes below it.
	NonIdle int
	// Target is ceil(M × 100 / targetCapacity), what target tracking wants.
	Target           int
	Current, Desired int
	// Reason says what was decided and why (for logs and tests).
	Reason string
	// BelowSince carries the scale-in delay to the next Decide.
	BelowSince time.Time
	// Protect holds the node IDs whose ProtectedFromScaleIn must change, with
	// the new value.
	Protect map[string]bool
}

// Scaled reports whether the decision changes the group's desired count.
func (d Decision) Scaled() bool { return d.Desired != d.Current }

// Reasons.
const (
	ReasonDisabled     = "managed scaling disabled"
	ReasonSteady       = "at target"
	ReasonScaleOut     = "scale-out"
	ReasonScaleIn      = "scale-in"
	ReasonWarmingUp    = "scale-out held: instances warming up"
	ReasonAtMax        = "scale-out held: group at its maximum size"
	ReasonWaiting      = "scale-in held: tasks are waiting for capacity"
	ReasonScaleInDelay = "scale-in held: reservation below target for less than the scale-in delay"
	ReasonAtMin        = "scale-in held: no idle instance can go"
)

// Decide computes the reservation and the group's new desired count, and the
// termination protection flags that change. It is pure: inputs are not
// modified.
//
// N counts registered instances plus the group's Pending nodes (launched, not
// yet registered). Warm-up: a Pending node counts as running from the moment
// it is launched, and in the estimate of what waiting tasks need it is an
// empty node that they fill before any further node is assumed; so the tasks
// that caused a scale-out do not cause a second one while their nodes boot.
// Beyond that, no scale-out happens at all while a Pending node is younger
// than instanceWarmupPeriod.
//
// M: with waiting tasks, the registered instances plus every Pending or new
// node the waiting tasks would occupy, placing them (largest first) on the
// free room of the registered instances, then on Pending nodes, then on as
// many new nodes as needed; at least N+1 when a waiting task fits not even an
// empty node. Without waiting tasks, the instances running a non-daemon task.
func Decide(now time.Time, in Inputs) Decision {
	s := in.Scaling.withDefaults()
	d := Decision{Current: in.Group.Desired, Desired: in.Group.Desired, Waiting: len(in.Waiting)}

	registered := map[string]bool{}
	for _, inst := range in.Instances {
		if inst.NodeID != "" {
			registered[inst.NodeID] = true
		}
		if inst.Busy > 0 {
			d.NonIdle++
		}
	}
	var pending []resource.Node
	warming := false
	for _, n := range in.Group.Nodes {
		if n.State != resource.NodePending || registered[n.ID] {
			continue
		}
		pending = append(pending, n)
		if now.Sub(n.LaunchedAt) < s.Warmup {
			warming = true
		}
	}
	d.Protect = protection(in)
	if !s.Enabled {
		d.Reason = ReasonDisabled
		return d
	}

	d.N = len(in.Instances) + len(pending)
	if len(in.Waiting) > 0 {
		sim := simulate(in.Instances, pending, in.NewNode, in.Waiting)
		d.Fresh, d.Unfit = sim.fresh, sim.unfit
		d.M = len(in.Instances) + sim.futureUsed
		if sim.unfit > 0 && d.M < d.N+1 {
			d.M = d.N + 1
		}
	} else {
		d.M = d.NonIdle
	}
	d.Reservation = Reservation(d.M, d.N)
	d.Target = TargetSize(d.M, s.TargetCapacity)

	if d.Reservation < float64(s.TargetCapacity) && len(in.Waiting) == 0 {
		d.BelowSince = in.BelowSince
		if d.BelowSince.IsZero() {
			d.BelowSince = now
		}
	}

	cur := in.Group.Desired
	switch {
	case d.Target > cur:
		if warming {
			d.Reason = ReasonWarmingUp
			return d
		}
		next := clamp(cur+StepOut(d.Target-cur, s.MinStep, s.MaxStep), in.Group.Min, in.Group.Max)
		if next <= cur {
			d.Reason = ReasonAtMax
			return d
		}
		d.Desired, d.Reason = next, ReasonScaleOut
	case d.Target < cur:
		switch {
		case len(in.Waiting) > 0:
			d.Reason = ReasonWaiting
			return d
		case d.BelowSince.IsZero() || now.Sub(d.BelowSince) < in.ScaleInDelay:
			d.Reason = ReasonScaleInDelay
			return d
		}
		// Scale-in is not bounded by the step sizes (they limit scale-out
		// only) but never leaves fewer instances than run tasks.
		next := clamp(max(d.Target, d.NonIdle), in.Group.Min, in.Group.Max)
		if next >= cur {
			d.Reason = ReasonAtMin
			return d
		}
		d.Desired, d.Reason = next, ReasonScaleIn
	default:
		d.Reason = ReasonSteady
	}
	return d
}

// Reservation is CapacityProviderReservation: needed over running in percent;
// 100 when both are 0, 200 when some are needed and none run. Rounded to
// hundredths.
func Reservation(m, n int) float64 {
	switch {
	case n == 0 && m == 0:
		return 100
	case n == 0:
		return 200
	}
	return math.Round(float64(m)*10000/float64(n)) / 100
}

// TargetSize is the group size that puts the reservation at target:
// ceil(m × 100 / target).
func TargetSize(m, target int) int {
	if target <= 0 {
		target = DefaultTargetCapacity
	}
	return (m*100 + target - 1) / target
}

// StepOut bounds a scale-out of want instances: at least minStep (more
// capacity than asked for is ECS's rule when any is needed), at most maxStep.
func StepOut(want, minStep, maxStep int) int {
	return min(max(want, minStep), max(maxStep, 1))
}

func clamp(v, lo, hi int) int {
	if hi >= lo {
		v = min(v, hi)
	}
	return max(v, lo)
}

// protection decides ProtectedFromScaleIn for every node with a registered
// instance: set while it runs a non-daemon task, clear when idle. With
// managed termination protection off, flags it set earlier are cleared.
func protection(in Inputs) map[string]bool {
	nodes := map[string]bool{}
	for _, n := range in.Group.Nodes {
		nodes[n.ID] = n.ProtectedFromScaleIn
	}
	out := map[string]bool{}
	if !in.TerminationProtection {
		for id, on := range nodes {
			if on {
				out[id] = false
			}
		}
		return out
	}
	for _, inst := range in.Instances {
		on, ok := nodes[inst.NodeID]
		if !ok {
			continue
		}
		if want := inst.Busy > 0; want != on {
			out[inst.NodeID] = want
		}
	}
	return out
}

// TemplateView is how a node the group has not launched yet looks to
// placement: the template's CPU and memory, the reserved ports and
// attributes of a registered node of the group when there is one (like),
// and the awsvpc capability every agent has. Attributes matter little: the
// estimate for new nodes checks resources, ports and distinctInstance only.
func TemplateView(tmpl resource.NodeTemplate, like *scheduler.Instance) scheduler.Instance {
	v := scheduler.Instance{
		Status: resource.InstanceActive, AgentConnected: true,
		CPU: int64(tmpl.CPU), Memory: tmpl.Memory,
		TCPPorts: map[int32]bool{}, UDPPorts: map[int32]bool{},
		Attributes: map[string]string{scheduler.TaskENICapability: ""},
	}
	for k, val := range tmpl.Attributes {
		v.Attributes[k] = val
	}
	if tmpl.InstanceType != "" {
		v.Attributes["ecs.instance-type"] = tmpl.InstanceType
	}
	if like != nil {
		for k, val := range like.Attributes {
			v.Attributes[k] = val
		}
	}
	return v
}

// simulation is the estimate of where waiting tasks go.
type simulation struct {
	futureUsed int // Pending and new nodes that receive a task
	fresh      int // new nodes beyond the Pending ones
	unfit      int // tasks that fit not even an empty node
}

// simulate places the waiting tasks, largest first, on the registered
// instances' free room with the tasks' own constraints, then on Pending nodes
// and as many new nodes as needed (resources, ports and distinctInstance
// only: what a node not yet running will advertise is unknown). Tasks are
// bin-packed by memory so the estimate is the smallest that works.
func simulate(instances []Instance, pending []resource.Node, tmpl scheduler.Instance, waiting []Demand) simulation {
	existing := make([]scheduler.Instance, 0, len(instances))
	for _, inst := range instances {
		existing = append(existing, cloneView(inst.View))
	}
	var future []scheduler.Instance
	used := map[string]bool{}
	for _, n := range pending {
		v := cloneView(tmpl)
		v.ID = "~pending/" + n.ID
		future = append(future, v)
	}
	var sim simulation
	newBin := func() scheduler.Instance {
		v := cloneView(tmpl)
		v.ID = fmt.Sprintf("~new/%06d", sim.fresh)
		return v
	}

	demands := slices.Clone(waiting)
	slices.SortStableFunc(demands, func(a, b Demand) int {
		switch {
		case a.Task.Memory != b.Task.Memory:
			return cmpDesc(a.Task.Memory, b.Task.Memory)
		case a.Task.CPU != b.Task.CPU:
			return cmpDesc(a.Task.CPU, b.Task.CPU)
		}
		return strings.Compare(demandKey(a), demandKey(b))
	})
	binpack := []scheduler.Strategy{{Type: scheduler.StrategyBinpack, Field: "memory"}, {Type: scheduler.StrategyBinpack, Field: "cpu"}}
	for i := 0; i < len(demands); {
		// Identical tasks (one service's, one RunTask's) are placed together.
		j := i + 1
		for j < len(demands) && demandKey(demands[j]) == demandKey(demands[i]) {
			j++
		}
		d := demands[i]
		req := scheduler.Request{Task: d.Task, Count: j - i, Group: d.Group, Strategies: binpack, Constraints: d.Constraints, Seed: 1}
		i = j

		rem := req.Count - placeOn(existing, req, nil)
		if rem == 0 {
			continue
		}
		req = futureRequest(req)
		req.Count = rem
		rem -= placeOn(future, req, used)
		for rem > 0 {
			bin := []scheduler.Instance{newBin()}
			req.Count = rem
			n := placeOn(bin, req, used)
			if n == 0 {
				sim.unfit += rem
				break
			}
			future = append(future, bin[0])
			sim.fresh++
			rem -= n
		}
	}
	sim.futureUsed = len(used)
	return sim
}

// placeOn places req on views, charges the views for what it placed, marks
// the views that took a task in used (when given) and returns the count.
func placeOn(views []scheduler.Instance, req scheduler.Request, used map[string]bool) int {
	if len(views) == 0 || req.Count <= 0 {
		return 0
	}
	plan := scheduler.Place(views, req)
	index := make(map[string]int, len(views))
	for i := range views {
		index[views[i].ID] = i
	}
	for _, p := range plan.Placements {
		i, ok := index[p.InstanceID]
		if !ok {
			continue
		}
		charge(&views[i], req.Task, req.Group)
		if used != nil {
			used[p.InstanceID] = true
		}
	}
	return len(plan.Placements)
}

// futureRequest is req for nodes that are not running yet: their attributes
// are unknown, so only distinctInstance of the constraints is kept.
func futureRequest(req scheduler.Request) scheduler.Request {
	req.Task.RequiredAttributes = nil
	var keep []scheduler.Constraint
	for _, c := range req.Constraints {
		if c.Type == scheduler.ConstraintDistinctInstance {
			keep = append(keep, c)
		}
	}
	req.Constraints = keep
	return req
}

// charge records one copy of t on v, as the planner would.
func charge(v *scheduler.Instance, t scheduler.Task, group string) {
	v.CPU -= t.CPU
	v.Memory -= t.Memory
	switch strings.ToLower(t.NetworkMode) {
	case "awsvpc", "none":
	default:
		for _, p := range t.TCPPorts {
			v.TCPPorts[p] = true
		}
		for _, p := range t.UDPPorts {
			v.UDPPorts[p] = true
		}
	}
	v.GroupTasks[group]++
}

func cloneView(v scheduler.Instance) scheduler.Instance {
	v.TCPPorts = cloneMap(v.TCPPorts)
	v.UDPPorts = cloneMap(v.UDPPorts)
	v.GroupTasks = cloneMap(v.GroupTasks)
	return v
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// demandKey identifies tasks with the same requirements.
func demandKey(d Demand) string {
	return fmt.Sprintf("%d/%d/%v/%v/%s/%v/%s/%v", d.Task.CPU, d.Task.Memory, d.Task.TCPPorts, d.Task.UDPPorts,
		d.Task.NetworkMode, d.Task.RequiredAttributes, d.Group, d.Constraints)
}
