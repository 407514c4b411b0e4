package simfleet

import (
	"reflect"
	"testing"

	"github.com/ecsd/ecsd/scheduler"
)

func TestNew(t *testing.T) {
	cfg := Config{Instances: 300, Seed: 7, Attributes: map[string][]string{"stack": {"prod", "staging"}, "gpu": {""}}}
	a, b := New(cfg), New(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different fleets")
	}
	zones := map[string]int{}
	types := map[string]int{}
	for i, in := range a {
		if i > 0 && a[i-1].ID >= in.ID {
			t.Fatalf("instances not in ID order at %d", i)
		}
		zones[in.Attributes["ecs.availability-zone"]]++
		types[in.Attributes["ecs.instance-type"]]++
		if v, ok := in.Attributes["gpu"]; !ok || v != "" {
			t.Fatal("valueless attribute missing")
		}
		if s := in.Attributes["stack"]; s != "prod" && s != "staging" {
			t.Fatalf("stack = %q", s)
		}
		if !in.TCPPorts[51678] || in.Status != "ACTIVE" || !in.AgentConnected {
			t.Fatalf("instance %+v", in)
		}
	}
	if len(zones) != 3 || zones["us-east-1a"] != 100 || len(types) != len(DefaultSizes) {
		t.Fatalf("zones %v types %v", zones, types)
	}
}

func TestFleetRunAndStop(t *testing.T) {
	f := NewFleet(Config{Instances: 30, Seed: 1})
	req := scheduler.Request{Task: scheduler.Task{CPU: 512, Memory: 1024, TCPPorts: []int32{80}}, Count: 40, Group: "service:web",
		Strategies: scheduler.DefaultServiceStrategy()}
	plan, ids := f.Run(req)
	if len(ids) != 30 || len(plan.Failures) != 10 || plan.Failures[0].Reason != scheduler.ReasonPorts {
		t.Fatalf("placed %d, failures %v", len(ids), plan.Failures[:1])
	}
	for _, in := range f.Instances {
		if in.GroupTasks["service:web"] != 1 || !in.TCPPorts[80] || in.RunningTasks != 1 {
			t.Fatalf("instance not charged: %+v", in)
		}
	}
	running := f.RunningTasks("service:web")
	stop := scheduler.ScaleIn(running, f.Instances, nil, 12)
	f.Stop(stop...)
	if got := len(f.RunningTasks("service:web")); got != 18 {
		t.Fatalf("%d tasks left", got)
	}
	// The ports are free again where tasks stopped, so the next run fits.
	req.Count = 12
	if plan, _ := f.Run(req); len(plan.Placements) != 12 {
		t.Fatalf("re-run placed %d", len(plan.Placements))
	}
}
