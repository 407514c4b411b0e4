package main

import (
	"maps"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// views is the scheduler's view of the cluster (instances with what is left
// on them, the task groups and running tasks on each), built from a snapshot.
//
// Building it is O(instances + tasks): one pass over the instance records and
// one over the cluster's tasks, as RunTask does today. With reuse on, the
// views built at revision R are kept and advanced by the plans this process
// commits: they are valid for a snapshot exactly when its revision is the one
// they describe. etcd moves the revision by one per write, so a commit at R+1
// from views at R means nobody else wrote in between; any other writer (a
// state change, an attribute, a heartbeat) makes the next request rebuild.
type views struct {
	reuse bool
	rev   int64 // revision the views describe; 0: none
	list  []scheduler.Instance
	pos   map[string]int

	rebuilds int
	reused   int
}

// at returns the views for snap.
func (v *views) at(snap *cache.Snapshot) []scheduler.Instance {
	if v.reuse && v.rev != 0 && v.rev == snap.Rev() {
		v.reused++
		return v.list
	}
	v.rebuild(snap)
	return v.list
}

func (v *views) rebuild(snap *cache.Snapshot) {
	v.rebuilds++
	v.list = v.list[:0]
	if v.pos == nil {
		v.pos = map[string]int{}
	}
	clear(v.pos)
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, clusterName), func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Status == resource.InstanceInactive {
			return true
		}
		in := planner.InstanceView(ci, true)
		in.GroupTasks = map[string]int{}
		in.EC2InstanceID = ci.Ec2InstanceId
		if ci.VersionInfo != nil {
			in.AgentVersion = ci.VersionInfo.AgentVersion
		}
		if ci.RegisteredAt != nil {
			in.RegisteredAt = ci.RegisteredAt.Time
		}
		v.pos[ci.ID] = len(v.list)
		v.list = append(v.list, in)
		return true
	})
	snap.Walk(scope.KindPrefix(resource.KindTask, clusterName), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" || t.LastStatus == "STOPPED" {
			return true
		}
		if i, ok := v.pos[t.InstanceID]; ok {
			v.list[i].GroupTasks[t.Group]++
			if t.LastStatus == "RUNNING" {
				v.list[i].RunningTasks++
			}
		}
		return true
	})
	v.rev = snap.Rev()
}

// committed advances the views by a plan that was computed from them at
// planRev and committed at rev. The views are mutated only here, never while
// the scheduler holds them.
func (v *views) committed(tasks []*resource.Task, planRev, rev int64) {
	if !v.reuse || v.rev != planRev || rev != planRev+1 {
		v.rev = 0 // someone else wrote in between: rebuild next time
		return
	}
	for _, t := range tasks {
		i, ok := v.pos[t.InstanceID]
		if !ok {
			v.rev = 0
			return
		}
		in := &v.list[i]
		in.CPU -= t.Reserved.CPU
		in.Memory -= t.Reserved.Memory
		for _, p := range t.Reserved.TCPPorts {
			in.TCPPorts[p] = true
		}
		for _, p := range t.Reserved.UDPPorts {
			in.UDPPorts[p] = true
		}
		in.GroupTasks[t.Group]++
	}
	v.rev = rev
}

// diff counts instances whose reused view differs from one rebuilt from snap
// (a self-check of committed: it must be zero when this process is the only
// writer).
func (v *views) diff(snap *cache.Snapshot) int {
	if v.rev != snap.Rev() {
		return -1 // not comparable: someone else wrote
	}
	fresh := &views{}
	fresh.rebuild(snap)
	if len(fresh.list) != len(v.list) {
		return len(fresh.list)
	}
	bad := 0
	for i := range v.list {
		a, b := &v.list[i], &fresh.list[i]
		if a.ID != b.ID || a.CPU != b.CPU || a.Memory != b.Memory || !maps.Equal(a.GroupTasks, b.GroupTasks) ||
			!maps.Equal(a.TCPPorts, b.TCPPorts) || a.RunningTasks != b.RunningTasks {
			bad++
		}
	}
	return bad
}
