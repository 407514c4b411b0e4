package capacity

import (
	"strconv"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// Gather reads one provider's Inputs from snap: its managedScaling settings,
// its node group, the container instances of the group's cluster that belong
// to it (not INACTIVE; those of Terminating nodes are already leaving and are
// left out), their non-daemon tasks, and the cluster's tasks waiting for it.
// BelowSince and ScaleInDelay are the caller's.
func Gather(snap *cache.Snapshot, p *resource.CapacityProvider, ng *resource.NodeGroup, now time.Time, agentTimeout time.Duration) Inputs {
	in := Inputs{
		Provider: p.Name,
		Group:    Group{Min: ng.Min, Max: ng.Max, Desired: ng.Desired, Nodes: ng.Nodes},
	}
	if asg := p.AutoScalingGroupProvider; asg != nil {
		in.TerminationProtection = asg.ManagedTerminationProtection == ecs.ManagedTerminationProtectionENABLED
		if ms := asg.ManagedScaling; ms != nil {
			in.Scaling = Scaling{
				Enabled:        ms.Status == ecs.ManagedScalingStatusENABLED,
				TargetCapacity: int32Or(ms.TargetCapacity, DefaultTargetCapacity),
				MinStep:        int32Or(ms.MinimumScalingStepSize, DefaultMinStep),
				MaxStep:        int32Or(ms.MaximumScalingStepSize, DefaultMaxStep),
				Warmup:         DefaultWarmup,
			}
			if ms.InstanceWarmupPeriod != nil {
				in.Scaling.Warmup = time.Duration(*ms.InstanceWarmupPeriod) * time.Second
			}
		}
	}

	scope, cluster := ng.Scope, ng.Cluster
	byARN := map[string]*resource.Node{}
	byID := map[string]*resource.Node{}
	for i := range ng.Nodes {
		n := &ng.Nodes[i]
		byID[n.ID] = n
		if n.ContainerInstanceArn != "" {
			byARN[n.ContainerInstanceArn] = n
		}
	}
	cands := planner.ListCandidates(snap, scope, cluster, planner.Target{CapacityProvider: p.Name}, now, agentTimeout)
	index := map[string]int{}
	var like *scheduler.Instance
	for _, v := range cands.Views {
		ci := cands.Instances[v.ID]
		node := byARN[ci.ContainerInstanceArn]
		if node == nil && ci.NodeGroup == ng.Name && ci.NodeID != "" {
			node = byID[ci.NodeID]
		}
		inst := Instance{View: v}
		if node != nil {
			if node.State == resource.NodeTerminating {
				continue
			}
			inst.NodeID = node.ID
		}
		index[v.ID] = len(in.Instances)
		in.Instances = append(in.Instances, inst)
	}
	if len(in.Instances) > 0 {
		like = &in.Instances[0].View
	}
	in.NewNode = TemplateView(ng.Template, like)

	daemons := map[string]bool{}
	daemon := func(t *resource.Task) bool {
		if t.ServiceName == "" {
			return false
		}
		is, ok := daemons[t.ServiceName]
		if !ok {
			if e, found := snap.Get(scope.ServiceKey(cluster, t.ServiceName)); found {
				if svc, isSvc := e.Obj.(*resource.Service); isSvc {
					is = svc.SchedulingStrategy == ecs.SchedulingStrategyDAEMON
				}
			}
			daemons[t.ServiceName] = is
		}
		return is
	}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.Cluster != cluster {
			return true
		}
		switch {
		case t.Waiting():
			if t.CapacityProviderName == p.Name && !daemon(t) {
				in.Waiting = append(in.Waiting, demandOf(t))
			}
		case t.InstanceID != "" && t.InstanceCluster == "" && t.LastStatus != "STOPPED":
			if i, placed := index[t.InstanceID]; placed && !daemon(t) {
				in.Instances[i].Busy++
			}
		}
		return true
	})
	return in
}

func int32Or(p *int32, def int) int {
	if p == nil {
		return def
	}
	return int(*p)
}

// demandOf is what a waiting task needs from an instance: what the planner
// will charge (Reserved), the definition's network mode and required
// attributes, and the constraints of the call and of the definition.
func demandOf(t *resource.Task) Demand {
	d := Demand{TaskID: t.ID, Group: t.Group}
	def := &t.Definition
	d.Task = scheduler.Task{
		CPU: t.Reserved.CPU, Memory: t.Reserved.Memory,
		TCPPorts: t.Reserved.TCPPorts, UDPPorts: t.Reserved.UDPPorts,
		NetworkMode: string(def.NetworkMode),
	}
	if d.Task.CPU == 0 && d.Task.Memory == 0 {
		d.Task.CPU, d.Task.Memory = definitionSize(t)
	}
	for _, a := range def.RequiresAttributes {
		d.Task.RequiredAttributes = append(d.Task.RequiredAttributes, scheduler.Attribute{Name: a.Name, Value: a.Value})
	}
	for _, c := range def.PlacementConstraints {
		d.Constraints = append(d.Constraints, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	for _, c := range t.PlacementConstraints {
		d.Constraints = append(d.Constraints, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	return d
}

// definitionSize is the task's size when nothing was reserved for it: the
// task-level cpu and memory, else the sums over its containers (memory
// reservation before the hard limit), as RunTask computes it.
func definitionSize(t *resource.Task) (cpu, mem int64) {
	if n, err := strconv.ParseInt(t.Cpu, 10, 64); err == nil {
		cpu = n
	} else if n, err := strconv.ParseInt(t.Definition.Cpu, 10, 64); err == nil {
		cpu = n
	} else {
		for _, c := range t.EffectiveContainers() {
			cpu += int64(c.Cpu)
		}
	}
	if n, err := strconv.ParseInt(t.Memory, 10, 64); err == nil {
		mem = n
	} else if n, err := strconv.ParseInt(t.Definition.Memory, 10, 64); err == nil {
		mem = n
	} else {
		for _, c := range t.EffectiveContainers() {
			switch {
			case c.MemoryReservation != nil:
				mem += int64(*c.MemoryReservation)
			case c.Memory != nil:
				mem += int64(*c.Memory)
			}
		}
	}
	return cpu, mem
}
