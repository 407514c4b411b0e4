package scheduler

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ecsd/ecsd/scheduler/cql"
)

// inst builds an ACTIVE, connected instance; attrs are "name=value" or a bare
// "name" for a valueless attribute, and "group:<g>=<n>" sets GroupTasks.
func inst(id string, cpu, mem int64, attrs ...string) Instance {
	in := Instance{
		ID: id, ARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/c/" + id,
		Status: "ACTIVE", AgentConnected: true, CPU: cpu, Memory: mem,
		TCPPorts: map[int32]bool{22: true}, UDPPorts: map[int32]bool{},
		Attributes: map[string]string{}, GroupTasks: map[string]int{},
	}
	for _, a := range attrs {
		name, value, _ := strings.Cut(a, "=")
		if g, ok := strings.CutPrefix(name, "group:"); ok {
			n := 0
			for _, c := range value {
				n = n*10 + int(c-'0')
			}
			in.GroupTasks[g] = n
			continue
		}
		in.Attributes[name] = value
	}
	return in
}

func ids(p Plan) []string {
	out := []string{}
	for _, pl := range p.Placements {
		out = append(out, pl.InstanceID)
	}
	return out
}

func spread(field string) Strategy  { return Strategy{Type: StrategySpread, Field: field} }
func binpack(field string) Strategy { return Strategy{Type: StrategyBinpack, Field: field} }
func memberOf(expr string) Constraint {
	return Constraint{Type: ConstraintMemberOf, Expression: expr}
}

var distinctInstance = Constraint{Type: ConstraintDistinctInstance}

const az = "attribute:ecs.availability-zone"

func TestPlaceTable(t *testing.T) {
	small := Task{CPU: 256, Memory: 512}
	cases := []struct {
		name      string
		instances []Instance
		req       Request
		want      []string // instance IDs in placement order
		failures  []string // reasons of the unplaced copies
	}{
		{
			name:      "binpack memory fills the fullest instance first",
			instances: []Instance{inst("a", 4096, 3000), inst("b", 4096, 1024), inst("c", 4096, 2048)},
			req:       Request{Task: small, Count: 6, Strategies: []Strategy{binpack("memory")}},
			want:      []string{"b", "b", "c", "c", "c", "c"},
		},
		{
			name:      "binpack cpu, field case-insensitive",
			instances: []Instance{inst("a", 512, 8000), inst("b", 1024, 8000), inst("c", 256, 8000)},
			req:       Request{Task: small, Count: 4, Strategies: []Strategy{binpack("CPU")}},
			want:      []string{"c", "a", "a", "b"},
		},
		{
			name: "binpack ties broken by the next strategy",
			instances: []Instance{
				inst("a", 4096, 2048, "group:g=1"), inst("b", 4096, 2048), inst("c", 4096, 4096),
			},
			req:  Request{Task: small, Count: 5, Group: "g", Strategies: []Strategy{binpack("memory"), spread("instanceId")}},
			want: []string{"b", "b", "b", "b", "a"},
		},
		{
			name: "spread instanceId counts the group's existing tasks; binpack breaks ties",
			instances: []Instance{
				inst("a", 4096, 8000, "group:g=2"), inst("b", 4096, 7000), inst("c", 4096, 6000, "group:g=1", "group:other=5"),
			},
			req:  Request{Task: small, Count: 6, Group: "g", Strategies: []Strategy{spread("instanceId"), binpack("memory")}},
			want: []string{"b", "c", "b", "c", "b", "a"},
		},
		{
			name: "spread host is spread instanceId",
			instances: []Instance{
				inst("a", 4096, 8000, "group:g=1"), inst("b", 4096, 7000),
			},
			req:  Request{Task: small, Count: 3, Group: "g", Strategies: []Strategy{spread("host"), binpack("memory")}},
			want: []string{"b", "b", "a"},
		},
		{
			name: "spread by AZ, then binpack memory within each AZ",
			instances: []Instance{
				inst("a1", 4096, 4096, "ecs.availability-zone=a"), inst("a2", 4096, 2048, "ecs.availability-zone=a"),
				inst("b1", 4096, 8192, "ecs.availability-zone=b"), inst("b2", 4096, 1024, "ecs.availability-zone=b"),
				inst("c1", 4096, 3072, "ecs.availability-zone=c", "group:web=1"),
			},
			req: Request{Task: small, Count: 8, Group: "web", Strategies: []Strategy{spread(az), binpack("memory")}},
			// c already has one task: a and b first, then all three zones are
			// even and binpack picks among them; within a zone the fullest
			// instance (a2, b2) takes tasks until it runs out.
			want: []string{"b2", "a2", "b2", "a2", "c1", "a2", "c1", "b1"},
		},
		{
			name: "spread by AZ then instanceId (the service default)",
			instances: []Instance{
				inst("a1", 4096, 8192, "ecs.availability-zone=a"), inst("a2", 4096, 8192, "ecs.availability-zone=a", "group:svc=1"),
				inst("b1", 4096, 8192, "ecs.availability-zone=b", "group:svc=1"),
			},
			req:  Request{Task: small, Count: 3, Group: "svc", Strategies: append(DefaultServiceStrategy(), binpack("memory"))},
			want: []string{"a1", "b1", "a1"},
		},
		{
			name: "spread over a custom attribute; instances without it are a value of their own",
			instances: []Instance{
				inst("r1", 4096, 8000, "rack=1"), inst("r2", 4096, 7000, "rack=2"), inst("x", 4096, 6000),
			},
			req:  Request{Task: small, Count: 4, Group: "g", Strategies: []Strategy{spread("attribute:rack"), binpack("memory")}},
			want: []string{"x", "r2", "r1", "x"},
		},
		{
			name: "spread counts tasks on full instances of the value too",
			instances: []Instance{
				inst("a-full", 0, 0, "ecs.availability-zone=a", "group:g=3"), inst("a1", 4096, 8000, "ecs.availability-zone=a"),
				inst("b1", 4096, 8000, "ecs.availability-zone=b"),
			},
			req:  Request{Task: small, Count: 3, Group: "g", Strategies: []Strategy{spread(az)}},
			want: []string{"b1", "b1", "b1"},
		},
		{
			name:      "memberOf restricts the candidates",
			instances: []Instance{inst("m", 4096, 8000, "ecs.instance-type=m5.large"), inst("t", 4096, 1000, "ecs.instance-type=t3.small")},
			req:       Request{Task: small, Count: 2, Strategies: []Strategy{binpack("memory")}, Constraints: []Constraint{memberOf("attribute:ecs.instance-type =~ t3.*")}},
			want:      []string{"t"},
			failures:  []string{ReasonMemberOf},
		},
		{
			name: "distinctInstance counts existing tasks and earlier copies",
			instances: []Instance{
				inst("a", 4096, 8000, "group:g=1"), inst("b", 4096, 7000), inst("c", 4096, 8000, "group:other=1"),
			},
			req:      Request{Task: small, Count: 4, Group: "g", Strategies: []Strategy{binpack("memory")}, Constraints: []Constraint{distinctInstance}},
			want:     []string{"b", "c"},
			failures: []string{ReasonDistinctInstance, ReasonDistinctInstance},
		},
		{
			name: "task:group anti-affinity in memberOf works like distinctInstance",
			instances: []Instance{
				inst("a", 4096, 8000), inst("b", 4096, 7000),
			},
			req:      Request{Task: small, Count: 3, Group: "g", Strategies: []Strategy{binpack("memory")}, Constraints: []Constraint{memberOf("not(task:group == g)")}},
			want:     []string{"b", "a"},
			failures: []string{ReasonMemberOf},
		},
		{
			name: "task:group affinity",
			instances: []Instance{
				inst("a", 4096, 8000, "group:service:db=1"), inst("b", 4096, 7000),
			},
			req:  Request{Task: small, Count: 2, Group: "g", Strategies: []Strategy{binpack("memory")}, Constraints: []Constraint{memberOf("task:group == service:db")}},
			want: []string{"a", "a"},
		},
		{
			name:      "static TCP port: one copy per instance, none where it is taken",
			instances: []Instance{inst("a", 4096, 8000), inst("b", 4096, 8000), inst("c", 4096, 8000)},
			req: Request{Task: Task{CPU: 10, Memory: 10, TCPPorts: []int32{22}}, Count: 1,
				Strategies: []Strategy{binpack("memory")}},
			failures: []string{ReasonPorts},
		},
		{
			name:      "static ports and UDP ports",
			instances: []Instance{inst("a", 4096, 8000), inst("b", 4096, 7000)},
			req: Request{Task: Task{CPU: 10, Memory: 10, TCPPorts: []int32{80}, UDPPorts: []int32{53}}, Count: 3,
				Strategies: []Strategy{binpack("memory")}},
			want:     []string{"b", "a"},
			failures: []string{ReasonPorts},
		},
		{
			name: "UDP port in use",
			instances: []Instance{func() Instance {
				in := inst("a", 4096, 8000)
				in.UDPPorts[53] = true
				return in
			}()},
			req:      Request{Task: Task{CPU: 10, Memory: 10, UDPPorts: []int32{53}}, Count: 1},
			failures: []string{ReasonPortsUDP},
		},
		{
			name:      "awsvpc needs the task-eni capability and uses no host ports",
			instances: []Instance{inst("a", 4096, 8000), inst("b", 4096, 8000, TaskENICapability)},
			req:       Request{Task: Task{CPU: 10, Memory: 10, NetworkMode: "awsvpc", TCPPorts: []int32{22}}, Count: 2, Strategies: []Strategy{binpack("memory")}},
			want:      []string{"b", "b"},
		},
		{
			name:      "host network mode: ports are host ports",
			instances: []Instance{inst("a", 4096, 8000)},
			req:       Request{Task: Task{CPU: 10, Memory: 10, NetworkMode: "host", TCPPorts: []int32{8080}}, Count: 2},
			want:      []string{"a"},
			failures:  []string{ReasonPorts},
		},
		{
			name:      "required attributes, with and without a value",
			instances: []Instance{inst("a", 4096, 8000, "ecs.capability.secrets.asm.environment-variables"), inst("b", 4096, 8000, "com.amazonaws.ecs.capability.docker-remote-api.1.19", "gpu=none"), inst("c", 4096, 8000, "com.amazonaws.ecs.capability.docker-remote-api.1.19", "gpu=nvidia")},
			req: Request{Task: Task{CPU: 10, Memory: 10, RequiredAttributes: []Attribute{
				{Name: "com.amazonaws.ecs.capability.docker-remote-api.1.19"}, {Name: "gpu", Value: "nvidia"}}}, Count: 2, Strategies: []Strategy{binpack("memory")}},
			want: []string{"c", "c"},
		},
		{
			name: "disconnected and draining instances are skipped",
			instances: func() []Instance {
				a, b, c := inst("a", 4096, 8000), inst("b", 4096, 8000), inst("c", 4096, 8000)
				a.AgentConnected = false
				b.Status = "DRAINING"
				return []Instance{a, b, c}
			}(),
			req:  Request{Task: small, Count: 2},
			want: []string{"c", "c"},
		},
		{
			name:      "resources: CPU then memory",
			instances: []Instance{inst("a", 100, 8000), inst("b", 4096, 100)},
			req:       Request{Task: small, Count: 1},
			failures:  []string{ReasonMemory}, // b got further (past CPU)
		},
		{
			name:      "zero count places nothing",
			instances: []Instance{inst("a", 4096, 8000)},
			req:       Request{Task: small, Count: 0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := deepCopy(c.instances)
			plan := Place(c.instances, c.req)
			if !reflect.DeepEqual(c.instances, before) {
				t.Fatal("Place modified the caller's instances")
			}
			got := ids(plan)
			want := c.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("placements = %v, want %v", got, want)
			}
			var reasons []string
			for _, f := range plan.Failures {
				reasons = append(reasons, f.Reason)
			}
			if !slices.Equal(reasons, c.failures) {
				t.Errorf("failures = %v, want %v", reasons, c.failures)
			}
			// The simple path agrees.
			ref := placeSimple(c.instances, c.req)
			if !slices.Equal(ids(ref), got) {
				t.Errorf("simple path placed %v", ids(ref))
			}
		})
	}
}

func deepCopy(ins []Instance) []Instance {
	out := make([]Instance, len(ins))
	for i, in := range ins {
		out[i] = in
		out[i].TCPPorts = cloneMap(in.TCPPorts)
		out[i].UDPPorts = cloneMap(in.UDPPorts)
		out[i].Attributes = cloneMap(in.Attributes)
		out[i].GroupTasks = cloneMap(in.GroupTasks)
	}
	return out
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRandomIsSeededAndSpreads(t *testing.T) {
	var fleet []Instance
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		fleet = append(fleet, inst(id, 100000, 100000))
	}
	req := Request{Task: Task{CPU: 1, Memory: 1}, Count: 500, Seed: 42}
	p1, p2 := Place(fleet, req), Place(fleet, req)
	if !slices.Equal(ids(p1), ids(p2)) {
		t.Fatal("the same seed gave different plans")
	}
	// No strategy is random, ECS's RunTask default.
	req.Strategies = DefaultRunTaskStrategy()
	if !slices.Equal(ids(Place(fleet, req)), ids(p1)) {
		t.Fatal("no strategy differs from random")
	}
	counts := map[string]int{}
	for _, id := range ids(p1) {
		counts[id]++
	}
	for id, n := range counts {
		if n < 50 {
			t.Errorf("random put only %d of 500 on %s: %v", n, id, counts)
		}
	}
	req.Seed = 43
	if slices.Equal(ids(Place(fleet, req)), ids(p1)) {
		t.Error("a different seed gave the same plan")
	}
	// Input order does not matter.
	rev := slices.Clone(fleet)
	slices.Reverse(rev)
	req.Seed = 42
	if !slices.Equal(ids(Place(rev, req)), ids(p1)) {
		t.Error("the plan depends on the order of the instances")
	}
}

func TestFailureAccount(t *testing.T) {
	var fleet []Instance
	for i := range 5 {
		fleet = append(fleet, inst(string(rune('a'+i)), 4096, 8000, "ecs.instance-type=m5.large"))
	}
	fleet[0].Memory = 100
	fleet[1].Memory = 300
	fleet[2].Attributes["ecs.instance-type"] = "t3.small"
	fleet[3].Status = "DRAINING"
	fleet[4].AgentConnected = false
	expr := "attribute:ecs.instance-type =~ m5.*"
	plan := Place(fleet, Request{Task: Task{CPU: 256, Memory: 512}, Count: 2, Constraints: []Constraint{memberOf(expr)}})
	if len(plan.Placements) != 0 || len(plan.Failures) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	f := plan.Failures[0]
	want := Failure{
		Reason:     ReasonMemberOf,
		Detail:     "5 instances: 2 lacked memory, 1 had the agent disconnected, 1 failed memberOf(" + expr + "), 1 draining",
		InstanceID: "c",
		ARN:        fleet[2].ARN,
	}
	if f != want {
		t.Errorf("failure = %+v\nwant      %+v", f, want)
	}
	wantInst := []InstanceFailure{
		{InstanceID: "a", ARN: fleet[0].ARN, Reason: ReasonMemory, Detail: "needs 512 MiB of memory, 100 left"},
		{InstanceID: "b", ARN: fleet[1].ARN, Reason: ReasonMemory, Detail: "needs 512 MiB of memory, 300 left"},
		{InstanceID: "c", ARN: fleet[2].ARN, Reason: ReasonMemberOf, Detail: "memberOf(" + expr + ") is false"},
		{InstanceID: "e", ARN: fleet[4].ARN, Reason: ReasonAgent, Detail: "the container agent is disconnected"},
	}
	if !reflect.DeepEqual(plan.InstanceFailures, wantInst) {
		t.Errorf("instance failures = %+v", plan.InstanceFailures)
	}

	// Closest among resource failures: the one with the most left.
	plan = Place(fleet[:2], Request{Task: Task{CPU: 256, Memory: 512}, Count: 1})
	if f := plan.Failures[0]; f.Reason != ReasonMemory || f.InstanceID != "b" || f.Detail != "2 instances: 2 lacked memory" {
		t.Errorf("failure = %+v", f)
	}

	// Instances filled by this very request report what stops them now.
	plan = Place([]Instance{inst("a", 4096, 1024)}, Request{Task: Task{CPU: 256, Memory: 512}, Count: 3})
	if len(plan.Placements) != 2 || plan.Failures[0].Detail != "1 instance: 1 lacked memory" || plan.InstanceFailures[0].Detail != "needs 512 MiB of memory, 0 left" {
		t.Errorf("plan = %+v", plan)
	}
}

func TestNoInstances(t *testing.T) {
	plan := Place(nil, Request{Task: Task{CPU: 1}, Count: 2})
	if !plan.NoInstances || len(plan.Failures) != 2 || plan.Failures[0].Reason != ReasonNoInstances ||
		plan.Failures[0].Detail != "the cluster has no container instances" || plan.InstanceFailures != nil {
		t.Fatalf("plan = %+v", plan)
	}
	d := inst("a", 4096, 8000)
	d.Status = "DRAINING"
	plan = Place([]Instance{d}, Request{Task: Task{CPU: 1}, Count: 1})
	if !plan.NoInstances || plan.Failures[0].Detail != "1 instance, none ACTIVE: 1 draining" {
		t.Fatalf("plan = %+v", plan)
	}
}

func TestValidate(t *testing.T) {
	ok := []Request{
		{},
		{Strategies: []Strategy{{Type: "random"}, spread(az), binpack("memory"), binpack("MEMORY"), spread("host")}},
		{Constraints: []Constraint{distinctInstance, memberOf("attribute:ecs.instance-type =~ t2.*")}},
	}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
	bad := []struct {
		req  Request
		want string
	}{
		{Request{Strategies: make([]Strategy, 6)}, "placementStrategy: at most 5 placement strategies are allowed, got 6"},
		{Request{Strategies: []Strategy{{Type: "pack"}}}, `placementStrategy[0].type: unknown placement strategy type "pack"`},
		{Request{Strategies: []Strategy{binpack("disk")}}, `placementStrategy[0].field: binpack takes field cpu or memory, not "disk"`},
		{Request{Strategies: []Strategy{spread("")}}, "placementStrategy[0].field: spread needs a field"},
		{Request{Strategies: []Strategy{spread("zone")}}, `placementStrategy[0].field: spread takes field instanceId, host or attribute:<name>, not "zone"`},
		{Request{Constraints: make([]Constraint, 11)}, "placementConstraints: at most 10 placement constraints"},
		{Request{Constraints: []Constraint{{Type: "memberOf"}}}, "placementConstraints[0].expression: an expression is required"},
		{Request{Constraints: []Constraint{memberOf(strings.Repeat("x", 2001))}}, "at most 2000 characters, got 2001"},
		{Request{Constraints: []Constraint{distinctInstance, memberOf("attribute:ecs.instance-type t2")}},
			"placementConstraints[1].expression: at position 29: expected an operator after attribute:ecs.instance-type, found 't2'"},
		{Request{Constraints: []Constraint{{Type: "distinctInstance", Expression: "x"}}}, "takes no expression"},
		{Request{Constraints: []Constraint{{Type: "spreadOut"}}}, `unknown placement constraint type "spreadOut"`},
	}
	for _, b := range bad {
		err := b.req.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Validate(%+v) = %v, want %q", b.req, err, b.want)
			continue
		}
		if !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%v is not ErrInvalidParameter", err)
		}
	}
	var ce *cql.Error
	err := ValidateConstraints("placementConstraints", []Constraint{memberOf("a ==")})
	if !errors.As(err, &ce) {
		t.Errorf("a bad expression's error does not carry the *cql.Error: %v", err)
	}
	if err := ValidateTaskDefinitionConstraints("placementConstraints", []Constraint{distinctInstance}); err == nil {
		t.Error("distinctInstance accepted in a task definition")
	}
}

func TestInstanceTarget(t *testing.T) {
	in := inst("a", 1, 1, "ecs.instance-type=t2.small", "group:service:web=2")
	for expr, want := range map[string]bool{
		"attribute:ecs.instance-type == t2.small": true,
		"task:group == service:web":               true,
		"task:group exists":                       true,
		"task:group =~ service:.*":                true,
		"task:group == family:x":                  false,
	} {
		e, err := cql.Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Eval(in.Target()); got != want {
			t.Errorf("%s = %v", expr, got)
		}
	}
}
