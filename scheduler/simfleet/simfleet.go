// Package simfleet builds simulated container instances for tests and
// benchmarks of the scheduler: chosen sizes, Availability Zones and
// attributes, generated from a seed, and tasks that "run" by being charged to
// the instances — no agents, no containers. It is a test and benchmark tool;
// nothing in ecsd's serving path uses it.
package simfleet

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/scheduler"
)

// Size is an instance type and what it registers.
type Size struct {
	Type   string // ecs.instance-type
	CPU    int64  // CPU units
	Memory int64  // MiB
	Weight int    // relative frequency in the fleet
}

// DefaultSizes is a mixed fleet of general-purpose, compute and memory
// instances, with the memory the ECS agent registers (less than the host's).
var DefaultSizes = []Size{
	{Type: "t3.medium", CPU: 2048, Memory: 3904, Weight: 2},
	{Type: "m5.large", CPU: 2048, Memory: 7680, Weight: 3},
	{Type: "m5.xlarge", CPU: 4096, Memory: 15576, Weight: 3},
	{Type: "c5.2xlarge", CPU: 8192, Memory: 15360, Weight: 1},
	{Type: "r5.xlarge", CPU: 4096, Memory: 31616, Weight: 1},
}

// DefaultZones are three Availability Zones.
var DefaultZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// ReservedPorts are the ports ECS reserves on every instance by default.
var ReservedPorts = []int32{22, 2375, 2376, 51678, 51679}

// Config describes a fleet. Zero fields take the defaults.
type Config struct {
	Instances int
	Sizes     []Size
	Zones     []string // assigned round-robin, so zones are balanced
	// Custom attributes: each instance gets one value of each, picked at
	// random (e.g. "rack": {"r1", "r2"}). A "" value means a valueless
	// attribute; a nil entry in a list leaves some instances without it.
	Attributes map[string][]string
	Seed       int64
	// Cluster and Account go into the ARNs.
	Cluster string
	Account string
	Region  string
}

// New builds the fleet's instances, ACTIVE and connected, in ID order.
func New(cfg Config) []scheduler.Instance {
	if len(cfg.Sizes) == 0 {
		cfg.Sizes = DefaultSizes
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = DefaultZones
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "sim"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xf1ee7))
	total := 0
	for _, s := range cfg.Sizes {
		total += max(s.Weight, 1)
	}
	// Attribute names in a fixed order, so the same seed gives the same fleet.
	names := make([]string, 0, len(cfg.Attributes))
	for name := range cfg.Attributes {
		names = append(names, name)
	}
	slices.Sort(names)

	out := make([]scheduler.Instance, cfg.Instances)
	for i := range out {
		pick := rng.IntN(total)
		size := cfg.Sizes[0]
		for _, s := range cfg.Sizes {
			if pick -= max(s.Weight, 1); pick < 0 {
				size = s
				break
			}
		}
		id := fmt.Sprintf("%08x-0000-4000-8000-%012d", i, i)
		attrs := map[string]string{
			"ecs.availability-zone":     cfg.Zones[i%len(cfg.Zones)],
			"ecs.instance-type":         size.Type,
			"ecs.os-type":               "linux",
			"ecs.cpu-architecture":      "x86_64",
			"ecs.ami-id":                "ami-0sim",
			scheduler.TaskENICapability: "",
		}
		for _, name := range names {
			vals := cfg.Attributes[name]
			if len(vals) == 0 {
				continue
			}
			attrs[name] = vals[rng.IntN(len(vals))]
		}
		tcp := make(map[int32]bool, len(ReservedPorts))
		for _, p := range ReservedPorts {
			tcp[p] = true
		}
		out[i] = scheduler.Instance{
			ID:             id,
			ARN:            fmt.Sprintf("arn:aws:ecs:%s:%s:container-instance/%s/%s", cfg.Region, cfg.Account, cfg.Cluster, id),
			Status:         "ACTIVE",
			AgentConnected: true,
			CPU:            size.CPU,
			Memory:         size.Memory,
			TCPPorts:       tcp,
			UDPPorts:       map[int32]bool{},
			Attributes:     attrs,
			GroupTasks:     map[string]int{},
			EC2InstanceID:  "i-" + strconv.FormatUint(uint64(0x1000000+i), 16),
			AgentVersion:   "1.80.0",
		}
	}
	return out
}

// Fleet is a simulated cluster whose tasks run by being charged to their
// instances.
type Fleet struct {
	Instances []scheduler.Instance
	byID      map[string]int
	next      int
	// Tasks that "run", by ID.
	Tasks map[string]Task
}

// Task is a simulated running task.
type Task struct {
	ID         string
	InstanceID string
	Group      string
	CPU        int64
	Memory     int64
	TCPPorts   []int32
	UDPPorts   []int32
}

// NewFleet builds a fleet from cfg.
func NewFleet(cfg Config) *Fleet {
	f := &Fleet{Instances: New(cfg), byID: map[string]int{}, Tasks: map[string]Task{}}
	for i, in := range f.Instances {
		f.byID[in.ID] = i
	}
	return f
}

// Instance returns the instance with the given ID.
func (f *Fleet) Instance(id string) *scheduler.Instance {
	i, ok := f.byID[id]
	if !ok {
		return nil
	}
	return &f.Instances[i]
}

// Run places req and starts its tasks; it returns the plan and the new
// tasks' IDs.
func (f *Fleet) Run(req scheduler.Request) (scheduler.Plan, []string) {
	plan := scheduler.Place(f.Instances, req)
	return plan, f.Apply(req, plan)
}

// Apply charges a plan's placements to the instances, as the planner would
// commit them, and returns the new tasks' IDs.
func (f *Fleet) Apply(req scheduler.Request, plan scheduler.Plan) []string {
	ids := make([]string, 0, len(plan.Placements))
	ports := req.Task.NetworkMode != "awsvpc" && req.Task.NetworkMode != "none"
	for _, p := range plan.Placements {
		in := f.Instance(p.InstanceID)
		if in == nil {
			continue
		}
		f.next++
		t := Task{ID: fmt.Sprintf("task-%08d", f.next), InstanceID: in.ID, Group: req.Group, CPU: req.Task.CPU, Memory: req.Task.Memory}
		if ports {
			t.TCPPorts, t.UDPPorts = req.Task.TCPPorts, req.Task.UDPPorts
		}
		in.CPU -= t.CPU
		in.Memory -= t.Memory
		for _, port := range t.TCPPorts {
			in.TCPPorts[port] = true
		}
		for _, port := range t.UDPPorts {
			in.UDPPorts[port] = true
		}
		in.GroupTasks[t.Group]++
		in.RunningTasks++
		f.Tasks[t.ID] = t
		ids = append(ids, t.ID)
	}
	return ids
}

// Stop stops tasks, giving their resources back.
func (f *Fleet) Stop(ids ...string) {
	for _, id := range ids {
		t, ok := f.Tasks[id]
		if !ok {
			continue
		}
		delete(f.Tasks, id)
		in := f.Instance(t.InstanceID)
		in.CPU += t.CPU
		in.Memory += t.Memory
		for _, port := range t.TCPPorts {
			delete(in.TCPPorts, port)
		}
		for _, port := range t.UDPPorts {
			delete(in.UDPPorts, port)
		}
		if in.GroupTasks[t.Group]--; in.GroupTasks[t.Group] <= 0 {
			delete(in.GroupTasks, t.Group)
		}
		in.RunningTasks--
	}
}

// RunningTasks lists a group's tasks for ScaleIn, in ID order.
func (f *Fleet) RunningTasks(group string) []scheduler.RunningTask {
	var out []scheduler.RunningTask
	for _, t := range f.Tasks {
		if t.Group == group {
			out = append(out, scheduler.RunningTask{ID: t.ID, InstanceID: t.InstanceID, CPU: t.CPU, Memory: t.Memory})
		}
	}
	slices.SortFunc(out, func(a, b scheduler.RunningTask) int { return strings.Compare(a.ID, b.ID) })
	return out
}
