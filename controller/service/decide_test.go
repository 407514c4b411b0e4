package service

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

func ptr[T any](v T) *T { return &v }

func hasEvent(events []string, substr string) bool {
	return slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, substr) })
}

func TestCircuitBreakerThreshold(t *testing.T) {
	for _, c := range []struct{ desired, want int32 }{
		{0, 3}, {1, 3}, {3, 3}, {6, 3}, {7, 4}, {10, 5}, {100, 50}, {399, 200}, {400, 200}, {1000, 200},
	} {
		if got := CircuitBreakerThreshold(c.desired); got != c.want {
			t.Errorf("CircuitBreakerThreshold(%d) = %d, want %d", c.desired, got, c.want)
		}
	}
}

func TestThrottleDelay(t *testing.T) {
	for _, c := range []struct {
		n    int32
		want time.Duration
	}{
		{0, 0}, {1, 0}, {2, 0}, {3, 10 * time.Second}, {4, 20 * time.Second}, {5, 40 * time.Second},
		{10, 1280 * time.Second}, {11, ThrottleCap}, {50, ThrottleCap},
	} {
		if got := ThrottleDelay(c.n); got != c.want {
			t.Errorf("ThrottleDelay(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestDeploymentBounds(t *testing.T) {
	for _, c := range []struct {
		desired, min, max int32
		want              Bounds
	}{
		{4, 100, 200, Bounds{4, 8}},
		{4, 50, 200, Bounds{2, 8}},
		{3, 50, 150, Bounds{2, 4}}, // ceil(1.5) = 2, floor(4.5) = 4
		{1, 0, 100, Bounds{0, 1}},
		{0, 100, 200, Bounds{0, 0}},
		{10, 75, 125, Bounds{8, 12}},
		{1, 100, 150, Bounds{0, 1}}, // no room: one at a time
		{3, 100, 100, Bounds{2, 3}},
	} {
		if got := DeploymentBounds(c.desired, c.min, c.max); got != c.want {
			t.Errorf("DeploymentBounds(%d, %d, %d) = %+v, want %+v", c.desired, c.min, c.max, got, c.want)
		}
	}
}

func TestCreateReachesSteadyState(t *testing.T) {
	w := newWorld(t, 3, 3)
	acts := w.decide()
	if len(acts.Launch) != 1 || acts.Launch[0].Count != 3 {
		t.Fatalf("first pass launches %+v, want 3 tasks", acts.Launch)
	}
	w.progress()
	w.settle(3)
	if !w.stable() {
		t.Fatalf("not stable: %+v", w.svc.Rollouts)
	}
	if !hasEvent(w.events, "(service web) has reached a steady state.") || !hasEvent(w.events, "deployment completed.") {
		t.Fatalf("events: %q", w.events)
	}
	if n := strings.Count(strings.Join(w.events, "\n"), "steady state"); n != 1 {
		t.Fatalf("steady state reported %d times", n)
	}
	if got := w.svc.History[0].Status; got != ecs.ServiceDeploymentStatusSUCCESSFUL {
		t.Fatalf("service deployment status %s", got)
	}
	// Nothing to do at the steady state.
	if acts := w.decide(); acts.Next != nil || len(acts.Launch)+len(acts.Stop)+len(acts.Events) != 0 {
		t.Fatalf("steady pass did something: %+v", acts)
	}
}

func TestRollingDeployment(t *testing.T) {
	for _, c := range []struct {
		name     string
		min, max int32
	}{
		{"100/200", 100, 200}, {"50/200", 50, 200}, {"50/100", 50, 100}, {"0/100", 0, 100}, {"75/125", 75, 125},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, 8, 4)
			w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{MinimumHealthyPercent: ptr(c.min), MaximumPercent: ptr(c.max)}
			w.settle(5)
			if !w.stable() {
				t.Fatal("not stable before the deployment")
			}
			id := w.deploy("td:2")
			w.settle(30) // every pass is checked against the bounds
			if !w.stable() || w.svc.Rollouts[0].Id != id {
				t.Fatalf("deployment did not complete: %+v", w.svc.Rollouts)
			}
			for _, tk := range w.tasks {
				if !tk.Stopped() && tk.DeploymentID != id {
					t.Fatalf("task %s of %s still running", tk.ID, tk.DeploymentID)
				}
			}
		})
	}
}

func TestCircuitBreakerRollback(t *testing.T) {
	w := newWorld(t, 4, 2)
	w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	w.settle(5)
	good := w.svc.Rollouts[0].Id
	bad := w.deploy("td:bad")
	w.bad[bad] = true
	w.settle(20)
	if !w.stable() || w.svc.Rollouts[0].Id != good || w.svc.TaskDefinition != "td:1" {
		t.Fatalf("not rolled back: td %s, rollouts %+v", w.svc.TaskDefinition, w.svc.Rollouts)
	}
	if !hasEvent(w.events, "(deployment "+bad+") deployment failed: tasks failed to start.") {
		t.Fatalf("events: %q", w.events)
	}
	if got := w.svc.History[0].Status; got != ecs.ServiceDeploymentStatusROLLBACKSUCCESSFUL {
		t.Fatalf("failed service deployment status %s", got)
	}
}

func TestCircuitBreakerRollbackFromHistory(t *testing.T) {
	// The last good deployment was already removed: the rollback rebuilds it
	// from the revision of the last successful service deployment.
	w := newWorld(t, 2, 2)
	w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	w.settle(5)
	w.svc.Rollouts[0].RolloutState = ecs.DeploymentRolloutStateINPROGRESS // as if not yet done...
	w.svc.Rollouts[0].RolloutState = ecs.DeploymentRolloutStateCOMPLETED
	bad := w.deploy("td:bad")
	w.bad[bad] = true
	// Drop the old deployment as if it had been cleaned up.
	w.svc.Rollouts = w.svc.Rollouts[:1]
	w.settle(20)
	if !w.stable() || w.svc.TaskDefinition != "td:1" || w.svc.Rollouts[0].Id != resource.RollbackDeploymentID(bad) {
		t.Fatalf("not rolled back: td %s, rollouts %+v", w.svc.TaskDefinition, w.svc.Rollouts)
	}
}

func TestCircuitBreakerWithoutRollbackStalls(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{Enable: true}}
	w.settle(5)
	bad := w.deploy("td:bad")
	w.bad[bad] = true
	w.settle(20)
	p := w.svc.Primary()
	if p.Id != bad || p.RolloutState != ecs.DeploymentRolloutStateFAILED || !strings.Contains(p.RolloutStateReason, "circuit breaker") {
		t.Fatalf("primary %+v", p)
	}
	if len(w.svc.Rollouts) != 2 {
		t.Fatalf("old deployment should keep running: %+v", w.svc.Rollouts)
	}
	if acts := w.decide(); len(acts.Launch) != 0 {
		t.Fatalf("a FAILED deployment launched %+v", acts.Launch)
	}
	running, _, _ := w.counts()
	if running != 2 {
		t.Fatalf("running %d, want the old 2", running)
	}
}

func TestCircuitBreakerStage2(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.hc = true
	w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	w.settle(5)
	id := w.deploy("td:2")
	// New tasks start and pass health checks once, then fail them.
	for i := 0; i < 30 && w.svc.Primary().Id == id && w.svc.Primary().RolloutState == ecs.DeploymentRolloutStateINPROGRESS; i++ {
		w.decide()
		w.progress()
		for j := range w.tasks {
			tk := &w.tasks[j]
			if tk.DeploymentID == id && tk.Health == ecs.HealthStatusHEALTHY && w.svc.Rollout(id).Stage2 {
				tk.Health = ecs.HealthStatusUNHEALTHY
			}
		}
		w.now = w.now.Add(10 * time.Second)
	}
	if !hasEvent(w.events, "deployment failed: tasks failed health checks.") {
		t.Fatalf("events: %q", w.events)
	}
	w.hc = false
	w.settle(20)
	if !w.stable() || w.svc.TaskDefinition != "td:1" {
		t.Fatalf("not rolled back: %s %+v", w.svc.TaskDefinition, w.svc.Rollouts)
	}
}

func TestRestartThrottle(t *testing.T) {
	w := newWorld(t, 1, 1)
	w.bad[w.svc.Rollouts[0].Id] = true
	for i := 0; i < 6; i++ {
		w.decide()
		w.progress()
	}
	if w.svc.Throttle.Failures < throttleAfter || w.svc.Throttle.NotBefore == nil {
		t.Fatalf("throttle %+v", w.svc.Throttle)
	}
	if !hasEvent(w.events, "is unable to consistently start tasks successfully.") {
		t.Fatalf("events %q", w.events)
	}
	acts := w.decide()
	if len(acts.Launch) != 0 || acts.RequeueAfter <= 0 {
		t.Fatalf("throttled pass launched %+v (requeue %v)", acts.Launch, acts.RequeueAfter)
	}
	// After the delay, one attempt.
	w.now = w.now.Add(acts.RequeueAfter)
	if acts := w.decide(); len(acts.Launch) != 1 || acts.Launch[0].Count != 1 {
		t.Fatalf("after the delay: %+v", acts.Launch)
	}
	// A new deployment resets the throttle.
	w.deploy("td:2")
	if w.svc.Throttle.Failures != 0 {
		t.Fatal("new deployment kept the throttle")
	}
	w.settle(10)
	if !w.stable() {
		t.Fatalf("not stable: %+v", w.svc.Rollouts)
	}
}

func TestUnhealthyReplacedStartFirst(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.hc = true
	w.settle(6)
	victim := w.tasks[0].ID
	w.task(victim).Health = ecs.HealthStatusUNHEALTHY
	acts := w.decide()
	if len(acts.Launch) != 1 || acts.Launch[0].Count != 1 || len(acts.Stop) != 0 {
		t.Fatalf("start-first: launch %+v stop %+v", acts.Launch, acts.Stop)
	}
	if !hasEvent(acts.Events, "(task "+victim+") failed container health checks.") {
		t.Fatalf("events %q", acts.Events)
	}
	w.progress() // the replacement starts, health unknown
	w.progress() // and turns healthy
	acts = w.decide()
	if len(acts.Stop) != 1 || acts.Stop[0].TaskID != victim {
		t.Fatalf("trim: %+v", acts.Stop)
	}
	w.settle(5)
	if !w.stable() {
		t.Fatal("not stable")
	}
}

func TestUnhealthyReplacedStopFirst(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.hc = true
	w.svc.DeploymentConfiguration = &ecs.DeploymentConfiguration{MinimumHealthyPercent: ptr[int32](50), MaximumPercent: ptr[int32](100)}
	w.settle(6)
	w.tasks[0].Health = ecs.HealthStatusUNHEALTHY
	w.tasks[1].Health = ecs.HealthStatusUNHEALTHY
	acts := w.decide()
	if len(acts.Launch) != 0 || len(acts.Stop) != 1 {
		t.Fatalf("stop-first, one at a time: launch %+v stop %+v", acts.Launch, acts.Stop)
	}
	w.settle(10)
	if !w.stable() {
		t.Fatal("not stable")
	}
}

func TestScaleInHonoursProtection(t *testing.T) {
	w := newWorld(t, 4, 2)
	w.settle(5)
	w.tasks[0].Protected = true
	w.tasks[1].Protected = true
	w.svc.DesiredCount = 2
	acts := w.decide()
	if len(acts.Stop) != 2 {
		t.Fatalf("stops %+v", acts.Stop)
	}
	for _, s := range acts.Stop {
		if w.task(s.TaskID).Protected {
			t.Fatalf("stopped protected task %s", s.TaskID)
		}
	}
	if !hasEvent(acts.Events, "has stopped 2 running tasks:") {
		t.Fatalf("events %q", acts.Events)
	}
}

func TestScaleInSpreadsAcrossZones(t *testing.T) {
	w := newWorld(t, 6, 3) // three instances in three zones, two tasks each
	w.settle(5)
	w.svc.DesiredCount = 3
	w.settle(3)
	per := map[string]int{}
	for _, tk := range w.tasks {
		if !tk.Stopped() {
			per[tk.InstanceID]++
		}
	}
	for id, n := range per {
		if n != 1 {
			t.Fatalf("instance %s keeps %d tasks: %v", id, n, per)
		}
	}
}

func TestDrainingInstanceReplaced(t *testing.T) {
	w := newWorld(t, 4, 2)
	w.settle(5)
	w.insts[0].Status = resource.InstanceDraining
	w.insts[0].View.Status = resource.InstanceDraining
	w.settle(10)
	if !w.stable() {
		t.Fatal("not stable after drain")
	}
	for _, tk := range w.tasks {
		if !tk.Stopped() && tk.InstanceID == w.insts[0].ID {
			t.Fatalf("task %s still on the draining instance", tk.ID)
		}
	}
}

func TestDaemon(t *testing.T) {
	w := newWorld(t, 0, 2)
	w.svc.SchedulingStrategy = ecs.SchedulingStrategyDAEMON
	w.settle(5)
	if !w.stable() || w.svc.DesiredCount != 2 {
		t.Fatalf("daemon on 2 instances: desired %d, %+v", w.svc.DesiredCount, w.svc.Rollouts)
	}
	// A new instance gets one.
	w.addInstance("i-new", "us-east-1a")
	w.settle(4)
	if !w.stable() || w.svc.DesiredCount != 3 {
		t.Fatalf("after a new instance: desired %d", w.svc.DesiredCount)
	}
	// An instance that does not meet the constraints gets none.
	w.addInstance("i-odd", "us-east-1b")
	w.insts[len(w.insts)-1].Eligible = false
	w.settle(3)
	if w.svc.DesiredCount != 3 {
		t.Fatalf("ineligible instance counted: %d", w.svc.DesiredCount)
	}
	// Draining: the daemon task stops last.
	w.insts[0].Status = resource.InstanceDraining
	w.insts[0].OtherTasks = 1
	w.settle(3)
	onDrain := 0
	for _, tk := range w.tasks {
		if !tk.Stopped() && tk.InstanceID == w.insts[0].ID {
			onDrain++
		}
	}
	if onDrain != 1 {
		t.Fatalf("daemon task on the draining instance stopped before the others: %d left", onDrain)
	}
	w.insts[0].OtherTasks = 0
	w.settle(3)
	for _, tk := range w.tasks {
		if !tk.Stopped() && tk.InstanceID == w.insts[0].ID {
			t.Fatalf("daemon task %s kept on the drained instance", tk.ID)
		}
	}
	if !w.stable() || w.svc.DesiredCount != 2 {
		t.Fatalf("desired %d", w.svc.DesiredCount)
	}
	// A new deployment replaces each task.
	id := w.deploy("td:2")
	w.settle(10)
	if !w.stable() || w.svc.Rollouts[0].Id != id {
		t.Fatalf("daemon deployment: %+v", w.svc.Rollouts)
	}
}

func TestDeleteDrainsToInactive(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.settle(5)
	w.svc.Status = resource.ServiceDraining
	w.svc.DesiredCount = 0
	acts := w.decide()
	if len(acts.Stop) != 3 {
		t.Fatalf("stops %+v", acts.Stop)
	}
	if acts.Next != nil && acts.Next.Status == resource.ServiceInactive {
		t.Fatal("INACTIVE before the tasks stopped")
	}
	w.progress()
	acts = w.decide()
	if w.svc.Status != resource.ServiceInactive || w.svc.InactiveAt == nil {
		t.Fatalf("status %s", w.svc.Status)
	}
	if acts.RequeueAfter != InactiveRetention {
		t.Fatalf("requeue %v", acts.RequeueAfter)
	}
	w.now = w.now.Add(InactiveRetention)
	if acts := w.decide(); !acts.Delete {
		t.Fatal("INACTIVE record not collected after its retention")
	}
}

func TestRecreatedServiceIgnoresOldTasks(t *testing.T) {
	w := newWorld(t, 2, 2)
	w.tasks = append(w.tasks, TaskState{ID: "old", DeploymentID: "ecs-svc/old", InstanceID: "i-00", LastStatus: statusRunning,
		DesiredStatus: statusRunning, CreatedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-time.Hour)})
	acts := w.decide()
	if len(acts.Stop) != 0 || acts.Launch[0].Count != 2 {
		t.Fatalf("old incarnation's task adopted: %+v %+v", acts.Stop, acts.Launch)
	}
}

func TestGracePeriodDefersHealth(t *testing.T) {
	w := newWorld(t, 1, 1)
	w.svc.HealthCheckGracePeriodSeconds = ptr[int32](60)
	w.decide()
	w.progress()
	acts := w.decide()
	if w.svc.Primary().RolloutState != ecs.DeploymentRolloutStateINPROGRESS {
		t.Fatal("completed inside the grace period")
	}
	if acts.RequeueAfter <= 0 || acts.RequeueAfter > time.Minute {
		t.Fatalf("requeue %v", acts.RequeueAfter)
	}
	w.now = w.now.Add(time.Minute)
	w.decide()
	if w.svc.Primary().RolloutState != ecs.DeploymentRolloutStateCOMPLETED {
		t.Fatal("not completed after the grace period")
	}
}

func TestDecideDoesNotMutateInputs(t *testing.T) {
	w := newWorld(t, 3, 2)
	w.settle(2)
	before := string(resource.Encode(w.svc))
	tasks := slices.Clone(w.tasks)
	w.tasks[0].Health = ecs.HealthStatusUNHEALTHY
	w.tasks[0].HasHealthCheck = true
	Decide(w.svc, w.tasks, w.insts, w.now)
	if string(resource.Encode(w.svc)) != before {
		t.Fatal("Decide mutated the service")
	}
	_ = tasks
}
