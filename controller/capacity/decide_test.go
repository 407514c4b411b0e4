package capacity

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// small is the node template of most cases: 1024 CPU units, 2048 MiB.
var small = resource.NodeTemplate{InstanceType: "t3.small", CPU: 1024, Memory: 2048}

func view(id string, cpu, mem int64) scheduler.Instance {
	return scheduler.Instance{ID: id, ARN: "arn:" + id, Status: "ACTIVE", AgentConnected: true, CPU: cpu, Memory: mem,
		TCPPorts: map[int32]bool{}, UDPPorts: map[int32]bool{}, Attributes: map[string]string{}, GroupTasks: map[string]int{}}
}

// inst is a registered instance on node id with cpu/mem free and busy tasks.
func inst(id string, cpu, mem int64, busy int) Instance {
	return Instance{View: view(id, cpu, mem), NodeID: id, Busy: busy}
}

func insts(n int, cpu, mem int64, busy int) []Instance {
	var out []Instance
	for i := range n {
		out = append(out, inst(fmt.Sprintf("n%d", i), cpu, mem, busy))
	}
	return out
}

func want(n int, cpu, mem int64) []Demand {
	var out []Demand
	for i := range n {
		out = append(out, Demand{TaskID: fmt.Sprintf("w%d-%d-%d", cpu, mem, i), Group: "family:web",
			Task: scheduler.Task{CPU: cpu, Memory: mem, NetworkMode: "bridge"}})
	}
	return out
}

func nodes(in []Instance) []resource.Node {
	var out []resource.Node
	for _, i := range in {
		out = append(out, resource.Node{ID: i.NodeID, State: resource.NodeInService, ContainerInstanceArn: i.View.ARN})
	}
	return out
}

func pendingNodes(n int, launched time.Time) []resource.Node {
	var out []resource.Node
	for i := range n {
		out = append(out, resource.Node{ID: fmt.Sprintf("p%d", i), State: resource.NodePending, LaunchedAt: launched})
	}
	return out
}

func enabled(target int) Scaling {
	return Scaling{Enabled: true, TargetCapacity: target, MinStep: 1, MaxStep: 10000, Warmup: 300 * time.Second}
}

// inputs builds a case: registered instances (their nodes InService), the
// group's size bounds and desired count, and waiting tasks.
func inputs(instances []Instance, min, max, desired int, waiting []Demand) Inputs {
	return Inputs{
		Provider: "cp", Scaling: enabled(100),
		Group:     Group{Min: min, Max: max, Desired: desired, Nodes: nodes(instances)},
		Instances: instances, Waiting: waiting,
		NewNode:      TemplateView(small, nil),
		ScaleInDelay: 15 * time.Second,
	}
}

func TestReservation(t *testing.T) {
	for _, c := range []struct {
		m, n int
		want float64
	}{
		{0, 0, 100}, // nothing needed, nothing running
		{1, 0, 200}, // needed with none running
		{6, 0, 200},
		{0, 3, 0},
		{2, 4, 50},
		{4, 4, 100},
		{5, 4, 125},
		{1, 3, 33.33},
		{2, 3, 66.67},
	} {
		if got := Reservation(c.m, c.n); got != c.want {
			t.Errorf("Reservation(M=%d, N=%d) = %v, want %v", c.m, c.n, got, c.want)
		}
	}
}

func TestTargetSizeAndStep(t *testing.T) {
	for _, c := range []struct{ m, target, want int }{
		{0, 100, 0}, {3, 100, 3}, {3, 50, 6}, {3, 75, 4}, {1, 75, 2}, {10, 90, 12}, {2, 0, 2},
	} {
		if got := TargetSize(c.m, c.target); got != c.want {
			t.Errorf("TargetSize(%d, %d%%) = %d, want %d", c.m, c.target, got, c.want)
		}
	}
	for _, c := range []struct{ want, min, max, out int }{
		{1, 1, 10000, 1}, {1, 3, 10000, 3}, {7, 1, 5, 5}, {3, 2, 4, 3}, {1, 5, 2, 2},
	} {
		if got := StepOut(c.want, c.min, c.max); got != c.out {
			t.Errorf("StepOut(%d, min %d, max %d) = %d, want %d", c.want, c.min, c.max, got, c.out)
		}
	}
}

func TestDecideReservationCases(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      Inputs
		n, m    int
		res     float64
		desired int
		reason  string
	}{
		{"empty group, nothing to run", inputs(nil, 0, 10, 0, nil), 0, 0, 100, 0, ReasonSteady},
		{"empty group, six tasks of half a node wait", inputs(nil, 0, 10, 0, want(6, 512, 1024)), 0, 3, 200, 3, ReasonScaleOut},
		{"all busy, nothing waits", inputs(insts(3, 0, 0, 1), 0, 10, 3, nil), 3, 3, 100, 3, ReasonSteady},
		{"all busy, one waits", inputs(insts(3, 0, 0, 1), 0, 10, 3, want(1, 512, 512)), 3, 4, 133.33, 4, ReasonScaleOut},
		{"one of three busy", inputs(append(insts(1, 0, 0, 1), inst("idle1", 1024, 2048, 0), inst("idle2", 1024, 2048, 0)), 0, 10, 3, nil), 3, 1, 33.33, 3, ReasonScaleInDelay},
		{"waiting task fits free room", inputs(insts(2, 512, 1024, 1), 0, 10, 2, want(1, 512, 1024)), 2, 2, 100, 2, ReasonSteady},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(t0, c.in)
			if d.N != c.n || d.M != c.m || d.Reservation != c.res || d.Desired != c.desired || d.Reason != c.reason {
				t.Fatalf("N=%d M=%d reservation %v desired %d (%s); want N=%d M=%d %v desired %d (%s)",
					d.N, d.M, d.Reservation, d.Desired, d.Reason, c.n, c.m, c.res, c.desired, c.reason)
			}
		})
	}
}

func TestDecideTargetCapacity(t *testing.T) {
	// Two busy instances at 50% target: the group doubles without anything waiting.
	in := inputs(insts(2, 0, 0, 1), 0, 10, 2, nil)
	in.Scaling.TargetCapacity = 50
	d := Decide(t0, in)
	if d.Reservation != 100 || d.Target != 4 || d.Desired != 4 {
		t.Fatalf("reservation %v target %d desired %d; want 100, 4, 4", d.Reservation, d.Target, d.Desired)
	}
	// With the two new nodes Pending the reservation sits at target: stable.
	in.Group.Desired = 4
	in.Group.Nodes = append(in.Group.Nodes, pendingNodes(2, t0)...)
	d = Decide(t0.Add(time.Second), in)
	if d.N != 4 || d.M != 2 || d.Reservation != 50 || d.Scaled() || d.Reason != ReasonSteady {
		t.Fatalf("after: N=%d M=%d reservation %v desired %d (%s); want steady at 50%%", d.N, d.M, d.Reservation, d.Desired, d.Reason)
	}
	// A waiting task fills one Pending node: 3 of 4 needed at a 50% target
	// makes 6 (not N+1 needed, which would double the group on every pass).
	in.Waiting = want(1, 512, 512)
	d = Decide(t0.Add(time.Hour), in)
	if d.N != 4 || d.M != 3 || d.Fresh != 0 || d.Target != 6 || d.Desired != 6 {
		t.Fatalf("waiting: N=%d M=%d fresh %d target %d desired %d; want 4, 3, 0, 6, 6", d.N, d.M, d.Fresh, d.Target, d.Desired)
	}
}

func TestSimulateBinPacking(t *testing.T) {
	tmpl := TemplateView(small, nil)
	ports := func(n int, port int32) []Demand {
		ds := want(n, 128, 128)
		for i := range ds {
			ds[i].Task.TCPPorts = []int32{port}
		}
		return ds
	}
	distinct := func(ds []Demand) []Demand {
		for i := range ds {
			ds[i].Constraints = []scheduler.Constraint{{Type: scheduler.ConstraintDistinctInstance}}
		}
		return ds
	}
	memberOf := func(ds []Demand) []Demand {
		for i := range ds {
			ds[i].Constraints = []scheduler.Constraint{{Type: scheduler.ConstraintMemberOf, Expression: "attribute:color == blue"}}
		}
		return ds
	}
	for _, c := range []struct {
		name              string
		instances         []Instance
		pending           int
		waiting           []Demand
		futureUsed, fresh int
		unfit             int
	}{
		{"nothing waits", insts(2, 1024, 2048, 0), 0, nil, 0, 0, 0},
		{"all fit free room", insts(2, 512, 1024, 1), 0, want(2, 512, 1024), 0, 0, 0},
		{"free room first, then new nodes", insts(1, 512, 1024, 1), 0, append(want(1, 512, 1024), want(2, 1024, 2048)...), 2, 2, 0},
		{"two halves per new node", nil, 0, want(5, 512, 1024), 3, 3, 0},
		{"largest first packs tight", nil, 0, append(want(2, 256, 512), want(2, 768, 1536)...), 2, 2, 0},
		{"memory binds before cpu", nil, 0, want(4, 128, 1024), 2, 2, 0},
		{"pending nodes before new ones", nil, 2, want(5, 512, 1024), 3, 1, 0},
		{"pending nodes absorb the burst", nil, 2, want(3, 512, 1024), 2, 0, 0},
		{"static port: one per node", nil, 0, ports(3, 80), 3, 3, 0},
		{"port taken on the free room", []Instance{{View: func() scheduler.Instance {
			v := view("a", 1024, 2048)
			v.TCPPorts[80] = true
			return v
		}(), NodeID: "a", Busy: 1}}, 0, ports(1, 80), 1, 1, 0},
		{"distinctInstance: one per node", nil, 0, distinct(want(3, 128, 128)), 3, 3, 0},
		{"memberOf unmet on free room, new nodes assumed to match", insts(1, 1024, 2048, 0), 0, memberOf(want(1, 128, 128)), 1, 1, 0},
		{"bigger than a node", nil, 0, append(want(1, 4096, 1024), want(1, 512, 512)...), 1, 1, 1},
		{"disconnected free room is no room", []Instance{{View: func() scheduler.Instance {
			v := view("a", 1024, 2048)
			v.AgentConnected = false
			return v
		}(), NodeID: "a"}}, 0, want(1, 128, 128), 1, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := fmt.Sprint(c.instances)
			sim := simulate(c.instances, pendingNodes(c.pending, t0), tmpl, c.waiting)
			if sim.futureUsed != c.futureUsed || sim.fresh != c.fresh || sim.unfit != c.unfit {
				t.Fatalf("used %d new %d unfit %d; want %d, %d, %d", sim.futureUsed, sim.fresh, sim.unfit, c.futureUsed, c.fresh, c.unfit)
			}
			if fmt.Sprint(c.instances) != before {
				t.Fatal("simulate modified its input")
			}
		})
	}
}

func TestDecideNothingFitsNeedsOneMore(t *testing.T) {
	in := inputs(insts(2, 0, 0, 1), 0, 10, 2, want(1, 8192, 512))
	d := Decide(t0, in)
	if d.Unfit != 1 || d.M != 3 || d.Desired != 3 {
		t.Fatalf("unfit %d M %d desired %d; want 1, 3 (N+1), 3", d.Unfit, d.M, d.Desired)
	}
}

func TestDecideStepSizes(t *testing.T) {
	// One instance needed, minimum step 3: three are added.
	in := inputs(insts(2, 0, 0, 1), 0, 20, 2, want(1, 512, 512))
	in.Scaling.MinStep = 3
	if d := Decide(t0, in); d.Desired != 5 || d.Fresh != 1 {
		t.Fatalf("min step: desired %d fresh %d; want 5, 1", d.Desired, d.Fresh)
	}
	// Eight needed, maximum step 3: three now.
	in = inputs(nil, 0, 20, 0, want(8, 1024, 2048))
	in.Scaling.MaxStep = 3
	d := Decide(t0, in)
	if d.M != 8 || d.Target != 8 || d.Desired != 3 {
		t.Fatalf("max step: M %d target %d desired %d; want 8, 8, 3", d.M, d.Target, d.Desired)
	}
	// The step sizes do not bound scale-in.
	in = inputs(append(insts(1, 0, 0, 1), insts(9, 1024, 2048, 0)[1:]...), 0, 20, 9, nil)
	in.Scaling.MaxStep, in.BelowSince = 2, t0.Add(-time.Minute)
	if d := Decide(t0, in); d.Desired != 1 || d.Reason != ReasonScaleIn {
		t.Fatalf("scale-in: desired %d (%s); want 1", d.Desired, d.Reason)
	}
}

func TestDecideMinMax(t *testing.T) {
	in := inputs(nil, 0, 3, 0, want(5, 1024, 2048))
	if d := Decide(t0, in); d.Target != 5 || d.Desired != 3 {
		t.Fatalf("max: target %d desired %d; want 5, 3", d.Target, d.Desired)
	}
	in = inputs(insts(3, 0, 0, 1), 0, 3, 3, want(2, 1024, 2048))
	if d := Decide(t0, in); d.Scaled() || d.Reason != ReasonAtMax {
		t.Fatalf("at max: desired %d (%s)", d.Desired, d.Reason)
	}
	// Idle group at minimum 2: scale-in stops there.
	in = inputs(insts(4, 1024, 2048, 0), 2, 10, 4, nil)
	in.BelowSince = t0.Add(-time.Minute)
	if d := Decide(t0, in); d.Reservation != 0 || d.Desired != 2 {
		t.Fatalf("min: reservation %v desired %d; want 0, 2", d.Reservation, d.Desired)
	}
	in.Group.Desired = 2
	in.Instances, in.Group.Nodes = in.Instances[:2], in.Group.Nodes[:2]
	if d := Decide(t0, in); d.Scaled() || d.Reason != ReasonAtMin {
		t.Fatalf("at min: desired %d (%s)", d.Desired, d.Reason)
	}
	// Min above the count needed raises a scale-out to it.
	in = inputs(nil, 2, 10, 0, want(1, 128, 128))
	if d := Decide(t0, in); d.Desired != 2 {
		t.Fatalf("raised to min: desired %d; want 2", d.Desired)
	}
}

func TestDecideScaleInDelay(t *testing.T) {
	// Five instances, two run tasks: target tracking wants 2.
	in := inputs(append(insts(2, 0, 0, 1), inst("i2", 1024, 2048, 0), inst("i3", 1024, 2048, 0), inst("i4", 1024, 2048, 0)), 0, 10, 5, nil)
	d := Decide(t0, in)
	if d.Scaled() || d.Reason != ReasonScaleInDelay || !d.BelowSince.Equal(t0) {
		t.Fatalf("first look: desired %d (%s) below since %v", d.Desired, d.Reason, d.BelowSince)
	}
	in.BelowSince = d.BelowSince
	if d = Decide(t0.Add(14*time.Second), in); d.Scaled() || !d.BelowSince.Equal(t0) {
		t.Fatalf("14s: desired %d (%s)", d.Desired, d.Reason)
	}
	d = Decide(t0.Add(15*time.Second), in)
	if d.Desired != 2 || d.Reason != ReasonScaleIn || d.NonIdle != 2 {
		t.Fatalf("15s: desired %d (%s) nonIdle %d; want 2", d.Desired, d.Reason, d.NonIdle)
	}

	// Back at target, the delay restarts.
	busy := inputs(insts(5, 0, 0, 1), 0, 10, 5, nil)
	busy.BelowSince = t0
	if d := Decide(t0.Add(20*time.Second), busy); !d.BelowSince.IsZero() || d.Scaled() {
		t.Fatalf("at target: below since %v desired %d", d.BelowSince, d.Desired)
	}

	// Tasks waiting: never scale in, even with unused Pending nodes.
	in = inputs(insts(3, 512, 1024, 1), 0, 10, 5, want(1, 512, 512))
	in.Group.Nodes = append(in.Group.Nodes, pendingNodes(2, t0.Add(-time.Hour))...)
	in.BelowSince = t0.Add(-time.Hour)
	if d := Decide(t0, in); d.Scaled() || d.Reason != ReasonWaiting {
		t.Fatalf("waiting: desired %d (%s) M %d", d.Desired, d.Reason, d.M)
	}
}

func TestDecideNeverBelowNonIdle(t *testing.T) {
	// Target 100 with 3 of 8 busy: 3 stay however long it has been below.
	in := inputs(append(insts(3, 0, 0, 2), insts(8, 1024, 2048, 0)[3:]...), 0, 10, 8, nil)
	in.BelowSince = t0.Add(-time.Hour)
	d := Decide(t0, in)
	if d.Desired != 3 || d.NonIdle != 3 {
		t.Fatalf("desired %d nonIdle %d; want 3", d.Desired, d.NonIdle)
	}
	// Daemon-only instances are idle (Gather leaves daemon tasks out of
	// Busy), so with none busy the group may empty.
	in = inputs(insts(2, 512, 512, 0), 0, 10, 2, nil)
	in.BelowSince = t0.Add(-time.Hour)
	if d := Decide(t0, in); d.Desired != 0 || d.Reservation != 0 {
		t.Fatalf("idle: desired %d reservation %v; want 0, 0", d.Desired, d.Reservation)
	}
}

func TestDecideWarmupPreventsDoubleScaleOut(t *testing.T) {
	// Four tasks each needing a whole node, at most two nodes per step.
	in := inputs(nil, 0, 10, 0, want(4, 1024, 2048))
	in.Scaling.MaxStep = 2
	d := Decide(t0, in)
	if d.Desired != 2 {
		t.Fatalf("first step: desired %d; want 2", d.Desired)
	}
	// The node group launched two Pending nodes; the same tasks still wait.
	in.Group.Desired, in.Group.Nodes = 2, pendingNodes(2, t0)
	d = Decide(t0.Add(time.Second), in)
	if d.N != 2 || d.Fresh != 2 || d.Scaled() || d.Reason != ReasonWarmingUp {
		t.Fatalf("warming: N=%d fresh %d desired %d (%s); want held", d.N, d.Fresh, d.Desired, d.Reason)
	}
	// After the warm-up period the rest is added.
	d = Decide(t0.Add(301*time.Second), in)
	if d.Desired != 4 || d.Reason != ReasonScaleOut {
		t.Fatalf("warm: desired %d (%s); want 4", d.Desired, d.Reason)
	}

	// A burst the Pending nodes absorb never scales out twice, warm-up or not.
	in = inputs(nil, 0, 10, 0, want(3, 512, 1024))
	d = Decide(t0, in)
	if d.Desired != 2 {
		t.Fatalf("burst: desired %d; want 2", d.Desired)
	}
	in.Group.Desired, in.Group.Nodes = 2, pendingNodes(2, t0)
	for _, at := range []time.Duration{time.Second, time.Hour} {
		if d := Decide(t0.Add(at), in); d.Scaled() || d.M != 2 || d.N != 2 {
			t.Fatalf("burst +%v: N=%d M=%d desired %d (%s); want steady", at, d.N, d.M, d.Desired, d.Reason)
		}
	}
	// Once the nodes registered (the Pending node of an instance is not
	// counted twice) and took the tasks, the group is at target.
	regd := []Instance{inst("p0", 0, 0, 2), inst("p1", 512, 1024, 1)}
	in = inputs(regd, 0, 10, 2, nil)
	in.Group.Nodes = pendingNodes(2, t0) // still marked Pending
	if d := Decide(t0.Add(time.Second), in); d.N != 2 || d.M != 2 || d.Scaled() {
		t.Fatalf("registered: N=%d M=%d desired %d", d.N, d.M, d.Desired)
	}
}

func TestDecideTerminationProtection(t *testing.T) {
	in := inputs([]Instance{inst("busy", 0, 0, 1), inst("idle", 1024, 2048, 0), inst("kept", 0, 0, 3), inst("free", 1024, 2048, 0)}, 0, 10, 4, nil)
	in.Group.Nodes[1].ProtectedFromScaleIn = true // idle now
	in.Group.Nodes[2].ProtectedFromScaleIn = true // still busy
	pend := resource.Node{ID: "booting", State: resource.NodePending, LaunchedAt: t0, ProtectedFromScaleIn: true}
	in.Group.Nodes = append(in.Group.Nodes, pend)
	in.Group.Desired = 5
	in.TerminationProtection = true
	d := Decide(t0, in)
	if w := map[string]bool{"busy": true, "idle": false}; !maps.Equal(d.Protect, w) {
		t.Fatalf("enabled: %v, want %v", d.Protect, w)
	}
	// Protection is kept also with managed scaling off.
	in.Scaling.Enabled = false
	if d := Decide(t0, in); d.Reason != ReasonDisabled || d.Scaled() || len(d.Protect) != 2 {
		t.Fatalf("scaling off: %s desired %d protect %v", d.Reason, d.Desired, d.Protect)
	}
	// Turned off: the flags it set are cleared.
	in.TerminationProtection = false
	if w := map[string]bool{"idle": false, "kept": false, "booting": false}; !maps.Equal(Decide(t0, in).Protect, w) {
		t.Fatalf("disabled: %v, want %v", Decide(t0, in).Protect, w)
	}
}

func TestDecideDoesNotModifyInputs(t *testing.T) {
	in := inputs(insts(2, 512, 1024, 1), 0, 10, 2, want(3, 512, 1024))
	in.Group.Nodes = append(in.Group.Nodes, pendingNodes(1, t0)...)
	before := fmt.Sprintf("%+v", in)
	Decide(t0.Add(time.Hour), in)
	if after := fmt.Sprintf("%+v", in); after != before {
		t.Fatalf("inputs changed:\n%s\n%s", before, after)
	}
}
