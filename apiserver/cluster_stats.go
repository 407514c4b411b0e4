package apiserver

import (
	"strconv"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// clusterCounts are a cluster's totals, derived from the records stored under
// it (never stored on the cluster itself, so they cannot drift).
type clusterCounts struct {
	ActiveServices   int32
	DrainingServices int32
	RunningTasks     int32
	PendingTasks     int32
	Instances        int32
	// byLaunch splits the task and service counts for STATISTICS.
	byLaunch map[ecs.LaunchType]*launchCounts
}

type launchCounts struct {
	running, pending, active, draining int32
}

// countCluster walks the services, tasks and container instances stored under
// the cluster in snap and adds up what each says it counts as.
func countCluster(snap *cache.Snapshot, scope resource.Scope, cluster string) clusterCounts {
	cc := clusterCounts{byLaunch: map[ecs.LaunchType]*launchCounts{}}
	for _, kind := range resource.MemberKinds {
		snap.Walk(scope.KindPrefix(kind, cluster), func(e *cache.Entry) bool {
			m, ok := e.Obj.(resource.ClusterMember)
			if !ok || m.ClusterName() != cluster {
				return true
			}
			cc.add(m.CountsAs())
			return true
		})
	}
	return cc
}

func (cc *clusterCounts) add(what resource.Count, lt ecs.LaunchType) {
	if what == resource.CountNone {
		return
	}
	if what == resource.CountRegisteredInstance {
		cc.Instances++
		return
	}
	// A task or service placed by a capacity provider strategy carries no launch
	// type; its capacity is EC2-like unless the member says otherwise.
	if lt == "" {
		lt = ecs.LaunchTypeEC2
	}
	l := cc.byLaunch[lt]
	if l == nil {
		l = &launchCounts{}
		cc.byLaunch[lt] = l
	}
	switch what {
	case resource.CountActiveService:
		cc.ActiveServices++
		l.active++
	case resource.CountDrainingService:
		cc.DrainingServices++
		l.draining++
	case resource.CountRunningTask:
		cc.RunningTasks++
		l.running++
	case resource.CountPendingTask:
		cc.PendingTasks++
		l.pending++
	}
}

// clusterStatistics are the statistics DescribeClusters returns with
// include=STATISTICS, in the order ECS lists them; every one is always present.
var clusterStatistics = []struct {
	name  string
	lt    ecs.LaunchType
	value func(launchCounts) int32
}{
	{"runningEC2TasksCount", ecs.LaunchTypeEC2, launchRunning},
	{"runningFargateTasksCount", ecs.LaunchTypeFARGATE, launchRunning},
	{"pendingEC2TasksCount", ecs.LaunchTypeEC2, launchPending},
	{"pendingFargateTasksCount", ecs.LaunchTypeFARGATE, launchPending},
	{"runningExternalTasksCount", ecs.LaunchTypeEXTERNAL, launchRunning},
	{"pendingExternalTasksCount", ecs.LaunchTypeEXTERNAL, launchPending},
	{"runningManagedInstancesTasksCount", ecs.LaunchTypeMANAGEDINSTANCES, launchRunning},
	{"pendingManagedInstancesTasksCount", ecs.LaunchTypeMANAGEDINSTANCES, launchPending},
	{"activeEC2ServiceCount", ecs.LaunchTypeEC2, launchActive},
	{"activeFargateServiceCount", ecs.LaunchTypeFARGATE, launchActive},
	{"drainingEC2ServiceCount", ecs.LaunchTypeEC2, launchDraining},
	{"drainingFargateServiceCount", ecs.LaunchTypeFARGATE, launchDraining},
	{"activeExternalServiceCount", ecs.LaunchTypeEXTERNAL, launchActive},
	{"drainingExternalServiceCount", ecs.LaunchTypeEXTERNAL, launchDraining},
	{"activeManagedInstancesServiceCount", ecs.LaunchTypeMANAGEDINSTANCES, launchActive},
	{"drainingManagedInstancesServiceCount", ecs.LaunchTypeMANAGEDINSTANCES, launchDraining},
}

func launchRunning(l launchCounts) int32  { return l.running }
func launchPending(l launchCounts) int32  { return l.pending }
func launchActive(l launchCounts) int32   { return l.active }
func launchDraining(l launchCounts) int32 { return l.draining }

// statistics renders the counts as DescribeClusters' STATISTICS key/value pairs.
func (cc clusterCounts) statistics() []ecs.KeyValuePair {
	out := make([]ecs.KeyValuePair, 0, len(clusterStatistics))
	for _, st := range clusterStatistics {
		var v int32
		if l := cc.byLaunch[st.lt]; l != nil {
			v = st.value(*l)
		}
		out = append(out, ecs.KeyValuePair{Name: st.name, Value: strconv.Itoa(int(v))})
	}
	return out
}
