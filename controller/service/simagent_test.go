package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var testScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

// simFleet is a simulated fleet for tests and benchmarks: container instance
// records with fresh agent presence, and an "agent" that moves the tasks
// placed on them the way a real one reports them — PROVISIONING → RUNNING
// (health HEALTHY when the definition has a health check), desired STOPPED →
// STOPPED — through the planner, so resources are given back. Images whose
// name contains "bad" fail to start (TaskFailedToStart). It is a test tool:
// no containers run.
type simFleet struct {
	t       testing.TB
	env     *testenv.Env
	cluster string
	plan    *planner.Planner

	mu        sync.Mutex
	instances map[string]bool
	unhealthy map[string]bool // task ids whose health checks fail
	kill      map[string]bool // task ids whose essential container exits
	startWait time.Duration
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
}

func newSimFleet(t testing.TB, env *testenv.Env, cluster string) *simFleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &simFleet{t: t, env: env, cluster: cluster, plan: planner.New(env.CP.Store, env.CP.Cache),
		instances: map[string]bool{}, unhealthy: map[string]bool{}, kill: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	t.Cleanup(f.stop)
	return f
}

func (f *simFleet) stop() {
	f.stopOnce.Do(func() {
		f.cancel()
		<-f.done
	})
}

// addInstance registers a simulated container instance in az.
func (f *simFleet) addInstance(id, az string, cpu, mem int32) {
	f.t.Helper()
	now := time.Now().UTC()
	ci := &resource.ContainerInstance{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceArn: testScope.ContainerInstanceARN(f.cluster, id),
			Ec2InstanceId:        "i-" + id,
			Status:               resource.InstanceActive,
			AgentConnected:       true,
			RegisteredAt:         ecs.NewTime(now),
			RegisteredResources: []ecs.Resource{
				{Name: "CPU", Type: "INTEGER", IntegerValue: cpu},
				{Name: "MEMORY", Type: "INTEGER", IntegerValue: mem},
				{Name: "PORTS", Type: "STRINGSET", StringSetValue: []string{"22", "2375", "2376", "51678", "51679"}},
			},
			Attributes:  simAttributes(az),
			VersionInfo: &ecs.VersionInfo{AgentVersion: "1.0.0-sim"},
		},
		Scope: testScope, Cluster: f.cluster, ID: id,
	}
	p := &resource.Presence{LastHeartbeat: now, Connected: true, Server: "sim"}
	if _, err := f.env.CP.Store.Txn(context.Background(),
		store.Put(testScope.ContainerInstanceKey(f.cluster, id), resource.Encode(ci)),
		store.Put(testScope.PresenceKey(f.cluster, id), resource.Encode(p))); err != nil {
		f.t.Fatalf("add instance: %v", err)
	}
	f.mu.Lock()
	f.instances[id] = true
	f.mu.Unlock()
}

// simAttributes are what a real agent reports: its zone, OS and capabilities.
func simAttributes(az string) []ecs.Attribute {
	attrs := []ecs.Attribute{{Name: "ecs.availability-zone", Value: az}, {Name: "ecs.os-type", Value: "linux"}, {Name: "ecs.cpu-architecture", Value: "x86_64"}}
	for v := 17; v <= 44; v++ {
		attrs = append(attrs, ecs.Attribute{Name: fmt.Sprintf("com.amazonaws.ecs.capability.docker-remote-api.1.%d", v)})
	}
	for _, c := range []string{"ecs.capability.container-health-check", "ecs.capability.container-ordering", "ecs.capability.task-eni",
		"ecs.capability.execution-role-awslogs", "com.amazonaws.ecs.capability.logging-driver.awslogs",
		"com.amazonaws.ecs.capability.logging-driver.json-file", "com.amazonaws.ecs.capability.task-iam-role",
		"ecs.capability.secrets.ssm.environment-variables", "ecs.capability.secrets.asm.environment-variables"} {
		attrs = append(attrs, ecs.Attribute{Name: c})
	}
	return attrs
}

// setInstanceStatus changes an instance's status (DRAINING, ACTIVE) as
// UpdateContainerInstancesState would.
func (f *simFleet) setInstanceStatus(id, status string) {
	f.t.Helper()
	key := testScope.ContainerInstanceKey(f.cluster, id)
	for i := 0; i < 20; i++ {
		e, ok := f.env.CP.Cache.Snapshot().Get(key)
		if !ok {
			f.t.Fatalf("no instance %s", id)
		}
		ci := *e.Obj.(*resource.ContainerInstance)
		ci.Status = status
		if _, err := f.env.CP.Store.Txn(context.Background(), store.Update(key, resource.Encode(&ci), e.Rev)); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("could not set instance %s %s", id, status)
}

func (f *simFleet) markUnhealthy(taskID string) {
	f.mu.Lock()
	f.unhealthy[taskID] = true
	f.mu.Unlock()
}

func (f *simFleet) killTask(taskID string) {
	f.mu.Lock()
	f.kill[taskID] = true
	f.mu.Unlock()
}

func (f *simFleet) run(ctx context.Context) {
	defer close(f.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	beat := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(beat) > 5*time.Second {
			f.heartbeat()
			beat = time.Now()
		}
		f.step(ctx)
	}
}

func (f *simFleet) heartbeat() {
	f.mu.Lock()
	ids := make([]string, 0, len(f.instances))
	for id := range f.instances {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	var ops []store.Op
	for _, id := range ids {
		ops = append(ops, store.Put(testScope.PresenceKey(f.cluster, id), resource.Encode(&resource.Presence{LastHeartbeat: time.Now().UTC(), Connected: true, Server: "sim"})))
	}
	if len(ops) > 0 {
		f.env.CP.Store.Txn(context.Background(), ops...)
	}
}

// step advances every task on the fleet by one transition.
func (f *simFleet) step(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _, err := f.plan.Update(ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		now := time.Now().UTC()
		var out []*resource.Task
		snap.Walk(testScope.KindPrefix(resource.KindTask, f.cluster), func(e *cache.Entry) bool {
			cur, ok := e.Obj.(*resource.Task)
			if !ok || !f.instances[cur.InstanceID] || cur.LastStatus == "STOPPED" {
				return true
			}
			obj, _ := resource.Decode(e.Key, resource.Encode(cur))
			t := obj.(*resource.Task)
			changed := true
			hc := false
			for _, c := range t.Definition.ContainerDefinitions {
				hc = hc || c.HealthCheck != nil
			}
			switch {
			case t.DesiredStatus == "STOPPED":
				f.stopped(t, now, "", "")
			case f.kill[t.ID] && t.LastStatus == "RUNNING":
				f.stopped(t, now, resource.StopEssentialContainerExited, "Essential container in task exited")
			case t.LastStatus != "RUNNING" && now.Sub(t.CreatedAt.Time) >= f.startWait:
				if strings.Contains(t.Definition.ContainerDefinitions[0].Image, "bad") {
					f.stopped(t, now, resource.StopTaskFailedToStart, "CannotPullContainerError: pull access denied for "+t.Definition.ContainerDefinitions[0].Image)
					break
				}
				t.LastStatus = "RUNNING"
				t.StartedAt = ecs.NewTime(now)
				t.PullStartedAt, t.PullStoppedAt, t.ConnectivityAt = ecs.NewTime(now), ecs.NewTime(now), ecs.NewTime(now)
				t.Connectivity = "CONNECTED"
				for i := range t.Containers {
					t.Containers[i].LastStatus = "RUNNING"
					t.Containers[i].RuntimeId = fmt.Sprintf("sim-%s-%d", t.ID, i)
				}
			case t.LastStatus == "RUNNING" && hc && f.unhealthy[t.ID] && t.HealthStatus != ecs.HealthStatusUNHEALTHY:
				t.HealthStatus = ecs.HealthStatusUNHEALTHY
			case t.LastStatus == "RUNNING" && hc && !f.unhealthy[t.ID] && t.HealthStatus != ecs.HealthStatusHEALTHY:
				t.HealthStatus = ecs.HealthStatusHEALTHY
			default:
				changed = false
			}
			if changed {
				t.Version++
				out = append(out, t)
			}
			return len(out) < 50 // etcd's limit of 128 operations per transaction
		})
		return out, nil
	})
	if err != nil && ctx.Err() == nil {
		f.t.Logf("sim agent: %v", err)
	}
}

func (f *simFleet) stopped(t *resource.Task, now time.Time, code, reason string) {
	t.LastStatus = "STOPPED"
	t.StoppedAt = ecs.NewTime(now)
	t.ExecutionStoppedAt = ecs.NewTime(now)
	if t.StoppingAt == nil {
		t.StoppingAt = ecs.NewTime(now)
	}
	if code != "" {
		t.StopCode = ecs.TaskStopCode(code)
		t.StoppedReason = reason
		t.DesiredStatus = "STOPPED"
	}
	for i := range t.Containers {
		t.Containers[i].LastStatus = "STOPPED"
	}
}

// tasks returns the service's tasks in the cache.
func (f *simFleet) tasks(service string) []*resource.Task {
	var out []*resource.Task
	f.env.CP.Cache.Snapshot().Walk(testScope.KindPrefix(resource.KindTask, f.cluster), func(e *cache.Entry) bool {
		if t, ok := e.Obj.(*resource.Task); ok && t.ServiceName == service {
			out = append(out, t)
		}
		return true
	})
	return out
}
