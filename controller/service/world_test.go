package service

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// world is a pure simulation for the decider's tests: a service record, its
// tasks and instances, and an "agent" that moves tasks along. Every decision
// is checked against the deployment bounds before it is applied.
type world struct {
	t     testing.TB
	now   time.Time
	svc   *resource.Service
	tasks []TaskState
	insts []InstanceState
	seq   int
	// hc gives new tasks a container health check.
	hc bool
	// bad deployments' tasks never start.
	bad map[string]bool
	// log keeps every decision's events.
	events []string
	depSeq int
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newWorld(t testing.TB, desired int32, instances int) *world {
	w := &world{t: t, now: t0, bad: map[string]bool{}}
	w.svc = &resource.Service{
		Service: ecs.Service{
			ServiceName:        "web",
			Status:             resource.ServiceActive,
			DesiredCount:       desired,
			SchedulingStrategy: ecs.SchedulingStrategyREPLICA,
			TaskDefinition:     "td:1",
			CreatedAt:          ecs.NewTime(t0),
		},
		Cluster: "c",
	}
	w.deploy("td:1")
	for i := 0; i < instances; i++ {
		w.addInstance(fmt.Sprintf("i-%02d", i), fmt.Sprintf("us-east-1%c", 'a'+rune(i%3)))
	}
	return w
}

func (w *world) addInstance(id, az string) {
	w.insts = append(w.insts, InstanceState{ID: id, Status: resource.InstanceActive, Eligible: true,
		View: scheduler.Instance{ID: id, Status: resource.InstanceActive, AgentConnected: true, CPU: 4096, Memory: 8192,
			Attributes: map[string]string{scheduler.AZAttribute: az}}})
}

// deploy starts a new deployment of td, as UpdateService does.
func (w *world) deploy(td string) string {
	w.depSeq++
	id := fmt.Sprintf("ecs-svc/%019d", w.depSeq)
	arn := "sd-" + id
	rev := "rev-" + id
	w.svc.TaskDefinition = td
	w.svc.StartDeployment(resource.Deployment{
		Deployment: ecs.Deployment{Id: id, TaskDefinition: td, RolloutState: ecs.DeploymentRolloutStateINPROGRESS,
			CreatedAt: ecs.NewTime(w.now), UpdatedAt: ecs.NewTime(w.now)},
		ServiceDeploymentArn: arn, ServiceRevisionArn: rev,
	}, &resource.ServiceDeploymentRecord{DeploymentID: id, ServiceDeployment: ecs.ServiceDeployment{
		ServiceDeploymentArn: arn, Status: ecs.ServiceDeploymentStatusINPROGRESS,
		TargetServiceRevision: &ecs.ServiceRevisionSummary{Arn: rev}}},
		&resource.ServiceRevisionRecord{ServiceRevision: ecs.ServiceRevision{ServiceRevisionArn: rev, TaskDefinition: td}})
	w.svc.Generation++
	return id
}

func (w *world) deployment(i int) *resource.Deployment { return &w.svc.Rollouts[i] }

func (w *world) task(id string) *TaskState {
	for i := range w.tasks {
		if w.tasks[i].ID == id {
			return &w.tasks[i]
		}
	}
	w.t.Fatalf("no task %s", id)
	return nil
}

// decide runs one pass, checks it and applies it.
func (w *world) decide() Actions {
	w.t.Helper()
	acts := Decide(w.svc, w.tasks, w.insts, w.now)
	w.check(acts)
	w.apply(acts)
	return acts
}

func (w *world) check(acts Actions) {
	w.t.Helper()
	if w.svc.Status != resource.ServiceActive {
		return
	}
	desired := w.svc.DesiredCount
	if acts.Next != nil {
		desired = acts.Next.DesiredCount
	}
	minPct, maxPct := percents(w.svc)
	b := DeploymentBounds(desired, minPct, maxPct)
	total, healthy := 0, 0
	d := newDecider(w.svc, w.tasks, w.insts, w.now)
	live := map[string]bool{}
	for i := range w.tasks {
		t := &w.tasks[i]
		if t.Stopped() {
			continue
		}
		if t.DesiredStatus != statusStopped {
			live[t.ID] = true
		}
		if d.parkedDaemon(t) || (w.svc.SchedulingStrategy == ecs.SchedulingStrategyDAEMON && !d.onActive(t)) {
			// A daemon's bounds are over its eligible instances.
			continue
		}
		total++
		if d.healthy(t) {
			healthy++
		}
	}
	launched := 0
	after := w.svc
	if acts.Next != nil {
		after = acts.Next
	}
	for _, l := range acts.Launch {
		launched += l.Count
		if p := after.Primary(); l.DeploymentID != p.Id {
			w.t.Fatalf("launch for %s, not the primary %s", l.DeploymentID, p.Id)
		}
	}
	stoppedHealthy := 0
	seen := map[string]bool{}
	for _, s := range acts.Stop {
		if seen[s.TaskID] {
			w.t.Fatalf("task %s stopped twice in one pass", s.TaskID)
		}
		seen[s.TaskID] = true
		if !live[s.TaskID] {
			w.t.Fatalf("stop of task %s, which is not live", s.TaskID)
		}
		if st := w.task(s.TaskID); d.healthy(st) && !(w.svc.SchedulingStrategy == ecs.SchedulingStrategyDAEMON && !d.onActive(st)) {
			stoppedHealthy++
		}
	}
	if total+launched > max(b.MaxTotal, total) {
		w.t.Fatalf("at %v: %d tasks + %d launched exceeds the maximum %d (desired %d)", w.now.Sub(t0), total, launched, b.MaxTotal, desired)
	}
	if healthy-stoppedHealthy < min(b.MinHealthy, healthy) {
		w.t.Fatalf("at %v: %d healthy - %d stopped is below the minimum %d (desired %d)", w.now.Sub(t0), healthy, stoppedHealthy, b.MinHealthy, desired)
	}
}

func (w *world) apply(acts Actions) {
	if acts.Next != nil {
		w.svc = acts.Next
	}
	w.events = append(w.events, acts.Events...)
	for _, s := range acts.Stop {
		t := w.task(s.TaskID)
		t.DesiredStatus = statusStopped
		t.StopCode = s.StopCode
	}
	active := []string{}
	for _, in := range w.insts {
		if in.Status == resource.InstanceActive {
			active = append(active, in.ID)
		}
	}
	for _, l := range acts.Launch {
		for i := 0; i < l.Count; i++ {
			inst := l.InstanceID
			if inst == "" {
				if len(active) == 0 {
					continue
				}
				inst = active[w.seq%len(active)]
			}
			w.seq++
			w.tasks = append(w.tasks, TaskState{ID: fmt.Sprintf("t%04d", w.seq), DeploymentID: l.DeploymentID, InstanceID: inst,
				LastStatus: "PROVISIONING", DesiredStatus: statusRunning, CreatedAt: w.now, HasHealthCheck: w.hc,
				Health: ecs.HealthStatusUNKNOWN, CPU: 256, Memory: 512})
		}
	}
}

// progress is the agent doing its job: pending tasks start (or fail if their
// deployment is bad), stopping tasks stop, health checks pass.
func (w *world) progress() {
	for i := range w.tasks {
		t := &w.tasks[i]
		switch {
		case t.Stopped():
		case t.DesiredStatus == statusStopped:
			w.stopTask(t, "")
		case t.LastStatus != statusRunning && w.bad[t.DeploymentID]:
			w.stopTask(t, resource.StopTaskFailedToStart)
		case t.LastStatus != statusRunning:
			t.LastStatus = statusRunning
			t.StartedAt = w.now
		case t.HasHealthCheck && t.Health == ecs.HealthStatusUNKNOWN:
			t.Health = ecs.HealthStatusHEALTHY
		}
	}
}

func (w *world) stopTask(t *TaskState, code string) {
	t.LastStatus = statusStopped
	t.StoppedAt = w.now
	if code != "" {
		t.StopCode = code
	}
}

// settle alternates decisions and agent progress until nothing changes.
func (w *world) settle(rounds int) {
	w.t.Helper()
	for i := 0; i < rounds; i++ {
		acts := w.decide()
		w.progress()
		w.now = w.now.Add(10 * time.Second)
		if acts.RequeueAfter > 0 {
			w.now = w.now.Add(acts.RequeueAfter)
		}
	}
}

func (w *world) counts() (running, pending, total int) {
	for _, t := range w.tasks {
		switch {
		case t.Stopped():
		case t.LastStatus == statusRunning:
			running++
			total++
		default:
			pending++
			total++
		}
	}
	return
}

// stable is the services-stable waiter's condition plus a COMPLETED rollout.
func (w *world) stable() bool {
	running, pending, _ := w.counts()
	return w.svc.Status == resource.ServiceActive && len(w.svc.Rollouts) == 1 &&
		w.svc.Rollouts[0].RolloutState == ecs.DeploymentRolloutStateCOMPLETED &&
		running == int(w.svc.DesiredCount) && pending == 0 && w.svc.Steady
}

func (w *world) random(r *rand.Rand) {
	for i := range w.tasks {
		t := &w.tasks[i]
		if t.Stopped() {
			continue
		}
		switch x := r.IntN(100); {
		case x < 4 && t.LastStatus != statusRunning:
			w.stopTask(t, resource.StopTaskFailedToStart)
		case x < 7 && t.LastStatus == statusRunning:
			w.stopTask(t, resource.StopEssentialContainerExited)
		case x < 10 && t.LastStatus == statusRunning && t.HasHealthCheck:
			t.Health = ecs.HealthStatusUNHEALTHY
		case x < 12 && t.LastStatus == statusRunning && t.HasHealthCheck:
			t.Health = ecs.HealthStatusHEALTHY
		}
	}
}
