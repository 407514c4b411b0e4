package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// The workload: spread by zone, then binpack memory inside each zone,
// and a memberOf constraint on the instance type (t3 instances excluded).
func request(count int, seed int64) scheduler.Request {
	return scheduler.Request{
		Task:  scheduler.Task{CPU: 100, Memory: 256},
		Count: count,
		Group: "service:bench",
		Seed:  seed,
		Strategies: []scheduler.Strategy{
			{Type: scheduler.StrategySpread, Field: "attribute:ecs.availability-zone"},
			{Type: scheduler.StrategyBinpack, Field: "memory"},
		},
		Constraints: []scheduler.Constraint{
			{Type: scheduler.ConstraintMemberOf, Expression: `attribute:ecs.instance-type =~ (m5|c5|r5)\..*`},
		},
	}
}

// result is one run's figures.
type result struct {
	Instances   int            `json:"instances"`
	Batch       int            `json:"batch"`
	Reuse       bool           `json:"reuseViews"`
	Placed      int            `json:"placed"`
	Failed      int            `json:"failed"`
	Requests    int            `json:"requests"`
	Seconds     float64        `json:"seconds"`
	PerSec      float64        `json:"placementsPerSec"`
	ViewSeconds float64        `json:"viewSeconds"`  // building scheduler views
	PlaceSecs   float64        `json:"placeSeconds"` // scheduler.Place
	PlaceOnly   float64        `json:"placeOnlyPerSec"`
	BuildSecs   float64        `json:"buildSeconds"` // task records
	CommitP50   float64        `json:"commitP50ms"`  // planner.Commit minus the plan function
	CommitP99   float64        `json:"commitP99ms"`
	RequestP50  float64        `json:"requestP50ms"` // whole planner.Commit call
	RequestP99  float64        `json:"requestP99ms"`
	Retries     int            `json:"retries"`
	Rebuilds    int            `json:"viewRebuilds"`
	Reused      int            `json:"viewReuses"`
	LoadSeconds float64        `json:"loadSeconds"`
	HWMMiB      float64        `json:"peakRSSMiB"`
	HeapMiB     float64        `json:"heapInUseMiB"` // Go heap after the run (cache, etcd, views)
	Overcommit  int            `json:"overcommittedInstances"`
	Mismatches  int            `json:"viewMismatches"` // reused views that differ from a rebuild at the end
	PerZone     map[string]int `json:"tasksPerZone"`
	UsedInsts   int            `json:"instancesUsed"`
}

// place runs total placements in requests of batch copies, sequentially, each
// committed through the planner.
func place(ctx context.Context, b *bench, total, batch int, reuse bool) (result, error) {
	r := result{Batch: batch, Reuse: reuse}
	v := &views{reuse: reuse}
	var commitLat, reqLat []time.Duration
	var viewDur, placeDur, buildDur time.Duration
	now := time.Now().UTC()
	nextID := 0
	start := time.Now()
	for placed := 0; placed < total; {
		n := min(batch, total-placed)
		req := request(n, int64(r.Requests))
		var planRev int64
		var fnDur time.Duration
		runs := 0
		fn := func(snap *cache.Snapshot) (planner.Plan, error) {
			runs++
			t0 := time.Now()
			planRev = snap.Rev()
			insts := v.at(snap)
			t1 := time.Now()
			plan := scheduler.Place(insts, req)
			t2 := time.Now()
			tasks := make([]*resource.Task, 0, len(plan.Placements))
			id := nextID
			for _, p := range plan.Placements {
				id++
				tasks = append(tasks, newTask(p, req, id, now))
			}
			t3 := time.Now()
			viewDur += t1.Sub(t0)
			placeDur += t2.Sub(t1)
			buildDur += t3.Sub(t2)
			fnDur += t3.Sub(t0)
			return planner.Plan{Tasks: tasks}, nil
		}
		t0 := time.Now()
		plan, rev, err := b.pl.Commit(ctx, fn)
		d := time.Since(t0)
		if err != nil {
			return r, fmt.Errorf("request %d: %w", r.Requests, err)
		}
		r.Retries += runs - 1
		reqLat = append(reqLat, d)
		commitLat = append(commitLat, d-fnDur)
		v.committed(plan.Tasks, planRev, rev)
		nextID += len(plan.Tasks)
		r.Requests++
		r.Placed += len(plan.Tasks)
		if len(plan.Tasks) < n {
			r.Failed += n - len(plan.Tasks)
			break // the fleet is full
		}
		placed += n
	}
	el := time.Since(start)
	r.Seconds = el.Seconds()
	r.PerSec = float64(r.Placed) / el.Seconds()
	r.ViewSeconds = viewDur.Seconds()
	r.PlaceSecs = placeDur.Seconds()
	r.PlaceOnly = float64(r.Placed) / placeDur.Seconds()
	r.BuildSecs = buildDur.Seconds()
	r.CommitP50, r.CommitP99 = pct(commitLat, 50), pct(commitLat, 99)
	r.RequestP50, r.RequestP99 = pct(reqLat, 50), pct(reqLat, 99)
	r.Rebuilds, r.Reused = v.rebuilds, v.reused
	r.Overcommit = overcommitted(b.cache.Snapshot())
	if reuse {
		r.Mismatches = v.diff(b.cache.Snapshot())
	}
	final := &views{}
	final.rebuild(b.cache.Snapshot())
	r.PerZone = map[string]int{}
	for _, in := range final.list {
		if n := in.GroupTasks[request(1, 0).Group]; n > 0 {
			r.PerZone[in.Attributes["ecs.availability-zone"]] += n
			r.UsedInsts++
		}
	}
	return r, nil
}

// newTask is the minimal task record a placement commits: what RunTask
// stores to describe and account for it, without a task definition copy.
func newTask(p scheduler.Placement, req scheduler.Request, n int, now time.Time) *resource.Task {
	id := fmt.Sprintf("%032x", n)
	t := &resource.Task{
		Scope:      scope,
		Cluster:    clusterName,
		ID:         id,
		InstanceID: p.InstanceID,
		Reserved:   resource.Usage{CPU: req.Task.CPU, Memory: req.Task.Memory},
	}
	t.TaskArn = scope.TaskARN(clusterName, id)
	t.ClusterArn = scope.ClusterARN(clusterName)
	t.ContainerInstanceArn = p.ARN
	t.TaskDefinitionArn = scope.TaskDefinitionARN("bench", 1)
	t.LastStatus = "PROVISIONING"
	t.DesiredStatus = "RUNNING"
	t.LaunchType = ecs.LaunchTypeEC2
	t.Group = req.Group
	t.Cpu = strconv.FormatInt(req.Task.CPU, 10)
	t.Memory = strconv.FormatInt(req.Task.Memory, 10)
	t.CreatedAt = ecs.NewTime(now)
	t.Version = 1
	return t
}

// overcommitted counts instances whose committed usage exceeds what they
// registered: it must be zero.
func overcommitted(snap *cache.Snapshot) int {
	bad := 0
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, clusterName), func(e *cache.Entry) bool {
		ci := e.Obj.(*resource.ContainerInstance)
		in := planner.InstanceView(ci, true)
		if in.CPU < 0 || in.Memory < 0 {
			bad++
		}
		return true
	})
	return bad
}

func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	return float64(s[max(i, 0)].Microseconds()) / 1000
}
