package service

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// Decide is the service scheduler's decision for one service: from the stored
// service, its tasks and the cluster's instances at one snapshot and the time,
// what to launch, what to stop and how the record changes. It is pure: no
// I/O, no clock, no randomness; svc, tasks and instances are not modified.
//
// The pass, in order (see README.md):
//  1. account: count newly failed tasks once (circuit breaker, throttle),
//     note tasks turned unhealthy;
//  2. breaker: fail the primary deployment past the threshold, and roll back;
//  3. progress: complete the primary when it is at its desired count, healthy,
//     and nothing else runs;
//  4. tasks: REPLICA or DAEMON launches and stops within the bounds;
//  5. steady: note the steady state once per arrival.
func Decide(svc *resource.Service, tasks []TaskState, instances []InstanceState, now time.Time) Actions {
	if svc == nil {
		return Actions{}
	}
	d := newDecider(svc, tasks, instances, now)
	d.run()
	if !sameRecord(svc, d.next) {
		d.acts.Next = d.next
	}
	return d.acts
}

type decider struct {
	svc  *resource.Service
	next *resource.Service
	now  time.Time
	// tasks are the service's tasks of this incarnation, by creation time.
	tasks []*TaskState
	inst  map[string]*InstanceState
	insts []InstanceState
	acts  Actions
	// stopping holds the ids this pass decided to stop.
	stopping map[string]bool
	// desired is the count the primary is reconciled to (the service's
	// desiredCount, or the eligible instances of a DAEMON service).
	desired int
}

func newDecider(svc *resource.Service, tasks []TaskState, instances []InstanceState, now time.Time) *decider {
	d := &decider{svc: svc, next: cloneService(svc), now: now, inst: map[string]*InstanceState{},
		insts: instances, stopping: map[string]bool{}}
	var created time.Time
	if svc.CreatedAt != nil {
		created = svc.CreatedAt.Time
	}
	for i := range tasks {
		t := &tasks[i]
		// A service re-created under the same name must not adopt the tasks
		// of the one deleted before it.
		if !created.IsZero() && t.CreatedAt.Before(created) {
			continue
		}
		d.tasks = append(d.tasks, t)
	}
	slices.SortStableFunc(d.tasks, func(a, b *TaskState) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i := range instances {
		d.inst[instances[i].ID] = &instances[i]
	}
	d.desired = int(svc.DesiredCount)
	return d
}

func (d *decider) run() {
	switch d.next.Status {
	case resource.ServiceInactive:
		d.collect()
		return
	case resource.ServiceDraining:
		d.drain()
		return
	}
	if d.next.Primary() == nil {
		return
	}
	if d.next.SchedulingStrategy == ecs.SchedulingStrategyDAEMON {
		d.desired = d.eligibleCount()
		if d.next.DesiredCount != int32(d.desired) {
			d.next.DesiredCount = int32(d.desired)
		}
	}
	d.account()
	if d.breaker() {
		d.acts.Requeue = true
		return
	}
	d.progress()
	if d.next.SchedulingStrategy == ecs.SchedulingStrategyDAEMON {
		d.daemon()
	} else {
		d.replica()
	}
	d.steady()
}

// ---- health

// healthy is ECS's notion: RUNNING and not being stopped, with its container
// health checks passing, or — when it has none — its grace period over.
func (d *decider) healthy(t *TaskState) bool {
	if t.LastStatus != statusRunning || t.DesiredStatus == statusStopped || d.stopping[t.ID] {
		return false
	}
	if t.HasHealthCheck {
		return t.Health == ecs.HealthStatusHEALTHY
	}
	return !d.inGrace(t)
}

// unhealthy tasks are RUNNING with a failing health check after their grace
// period; the scheduler replaces them.
func (d *decider) unhealthy(t *TaskState) bool {
	return t.LastStatus == statusRunning && t.DesiredStatus != statusStopped && t.HasHealthCheck &&
		t.Health == ecs.HealthStatusUNHEALTHY && !d.inGrace(t)
}

func (d *decider) inGrace(t *TaskState) bool {
	g := gracePeriod(d.next)
	if g == 0 || t.StartedAt.IsZero() {
		return false
	}
	end := t.StartedAt.Add(g)
	if d.now.Before(end) {
		d.requeueAt(end)
		return true
	}
	return false
}

// live tasks are not stopped and not being stopped.
func (d *decider) live(t *TaskState) bool {
	return !t.Stopped() && t.DesiredStatus != statusStopped && !d.stopping[t.ID]
}

func (d *decider) requeueAt(at time.Time) {
	wait := at.Sub(d.now)
	if wait <= 0 {
		wait = time.Millisecond
	}
	if d.acts.RequeueAfter == 0 || wait < d.acts.RequeueAfter {
		d.acts.RequeueAfter = wait
	}
}

// ---- 1. accounting

// account counts each failed task once: a task that stopped without reaching
// RUNNING (not stopped by the scheduler or a user) counts towards its
// deployment's circuit breaker (first stage) and the restart throttle; a
// task whose health checks fail counts towards the breaker too (first stage
// before any task of the deployment was healthy, second after). A task that
// reached RUNNING resets the throttle; the first healthy task of a deployment
// ends its first stage.
func (d *decider) account() {
	present := make(map[string]bool, len(d.tasks))
	for _, t := range d.tasks {
		present[t.ID] = true
		dep := d.next.Rollout(t.DeploymentID)
		if dep == nil || slices.Contains(dep.Counted, t.ID) {
			continue
		}
		switch {
		case t.Stopped() && t.StartedAt.IsZero() && t.StopCode != resource.StopServiceSchedulerInitiated && t.StopCode != resource.StopUserInitiated:
			dep.Counted = append(dep.Counted, t.ID)
			if !dep.Stage2 {
				dep.FailedTasks++
			}
			th := &d.next.Throttle
			th.Failures++
			now := d.now
			th.LastFailure = &now
			if delay := ThrottleDelay(th.Failures); delay > 0 {
				nb := d.now.Add(delay)
				th.NotBefore = &nb
			}
			if th.Failures == throttleAfter {
				d.event("is unable to consistently start tasks successfully.")
			}
		case d.unhealthy(t):
			dep.Counted = append(dep.Counted, t.ID)
			if dep.Stage2 {
				dep.HealthFailures++
			} else {
				dep.FailedTasks++
			}
			d.event(fmt.Sprintf("(task %s) failed container health checks.", t.ID))
		}
	}
	for i := range d.next.Rollouts {
		dep := &d.next.Rollouts[i]
		dep.Counted = slices.DeleteFunc(dep.Counted, func(id string) bool { return !present[id] })
		if len(dep.Counted) == 0 {
			dep.Counted = nil
		}
		if !dep.Stage2 {
			for _, t := range d.tasks {
				if t.DeploymentID == dep.Id && d.healthy(t) {
					// The first stage is over: the deployment can run tasks.
					dep.Stage2 = true
					dep.FailedTasks = 0
					break
				}
			}
		}
	}
	if th := d.next.Throttle; th.Failures > 0 && th.LastFailure != nil {
		for _, t := range d.tasks {
			if !t.StartedAt.IsZero() && t.StartedAt.After(*th.LastFailure) {
				d.next.Throttle = resource.Throttle{}
				break
			}
		}
	}
}

// ---- 2. circuit breaker

// breaker fails the IN_PROGRESS primary once its failures reach the threshold
// and, with rollback, makes the last COMPLETED deployment primary again. It
// reports whether it changed the deployments (the next pass acts on them).
func (d *decider) breaker() bool {
	p := d.next.Primary()
	enable, rollback := circuitBreaker(d.next)
	if !enable || p.RolloutState != ecs.DeploymentRolloutStateINPROGRESS {
		return false
	}
	th := CircuitBreakerThreshold(int32(d.desired))
	var why string
	switch {
	case !p.Stage2 && p.FailedTasks >= th:
		why = "tasks failed to start"
	case p.Stage2 && p.HealthFailures >= th:
		why = "tasks failed health checks"
	default:
		return false
	}
	failedID := p.Id
	p.RolloutState = ecs.DeploymentRolloutStateFAILED
	p.RolloutStateReason = "ECS deployment circuit breaker: " + why + "."
	p.UpdatedAt = ecs.NewTime(d.now)
	d.event(fmt.Sprintf("(deployment %s) deployment failed: %s.", failedID, why))
	rec := d.next.HistoryRecord(p.ServiceDeploymentArn)
	if rec != nil {
		rec.UpdatedAt = ecs.NewTime(d.now)
		rec.StatusReason = p.RolloutStateReason
		if rec.DeploymentCircuitBreaker != nil {
			rec.DeploymentCircuitBreaker.Status = ecs.ServiceDeploymentRollbackMonitorsStatusTRIGGERED
			rec.DeploymentCircuitBreaker.FailureCount = max(p.FailedTasks, p.HealthFailures)
		}
	}
	if !rollback {
		if rec != nil {
			rec.Status = ecs.ServiceDeploymentStatusSTOPPED
			rec.StoppedAt = ecs.NewTime(d.now)
		}
		return true
	}
	reason := "ECS deployment circuit breaker: rolling back to the last completed deployment."
	np := d.next.RollBack(failedID, reason, d.now)
	if np == nil {
		// Nothing ever completed: the deployment stays FAILED and stalls.
		if rec != nil {
			rec.Status = ecs.ServiceDeploymentStatusROLLBACKFAILED
			rec.StoppedAt = ecs.NewTime(d.now)
		}
		return true
	}
	np.RolloutStateReason = fmt.Sprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", np.Id)
	if rec != nil {
		rec.Status = ecs.ServiceDeploymentStatusROLLBACKINPROGRESS
		rec.Rollback = &ecs.Rollback{Reason: np.RolloutStateReason, ServiceRevisionArn: np.ServiceRevisionArn, StartedAt: ecs.NewTime(d.now)}
	}
	d.event(fmt.Sprintf("(deployment %s) rolling back to (deployment %s).", failedID, np.Id))
	return true
}

// ---- 3. progress

// progress completes the IN_PROGRESS primary once it runs its desired count
// of healthy tasks and no other task of the service is left: the other
// deployments are removed and the service deployment succeeds.
func (d *decider) progress() {
	p := d.next.Primary()
	if p.RolloutState != ecs.DeploymentRolloutStateINPROGRESS {
		return
	}
	healthy, total := 0, 0
	for _, t := range d.tasks {
		if t.Stopped() || d.parkedDaemon(t) {
			continue
		}
		total++
		if t.DeploymentID == p.Id && d.healthy(t) && d.onActive(t) {
			healthy++
		}
	}
	if healthy != d.desired || total != d.desired {
		return
	}
	p.RolloutState = ecs.DeploymentRolloutStateCOMPLETED
	p.RolloutStateReason = fmt.Sprintf("ECS deployment %s completed.", p.Id)
	p.UpdatedAt = ecs.NewTime(d.now)
	pid, rollbackOf := p.Id, p.RollbackOf
	d.next.Rollouts = slices.DeleteFunc(d.next.Rollouts, func(r resource.Deployment) bool { return r.Id != pid })
	p = d.next.Primary()
	p.RollbackOf = ""
	d.event(fmt.Sprintf("(deployment %s) deployment completed.", pid))
	// A completed rollback finishes the failed service deployment it undid.
	rec := d.next.HistoryRecord(p.ServiceDeploymentArn)
	if rollbackOf != "" {
		rec = nil
		for i := range d.next.History {
			if d.next.History[i].DeploymentID == rollbackOf {
				rec = &d.next.History[i]
				break
			}
		}
	}
	if rec != nil {
		rec.UpdatedAt = ecs.NewTime(d.now)
		rec.FinishedAt = ecs.NewTime(d.now)
		if rollbackOf != "" {
			rec.Status = ecs.ServiceDeploymentStatusROLLBACKSUCCESSFUL
		} else {
			rec.Status = ecs.ServiceDeploymentStatusSUCCESSFUL
			rec.StatusReason = ""
		}
		if rec.DeploymentCircuitBreaker != nil && rec.DeploymentCircuitBreaker.Status == ecs.ServiceDeploymentRollbackMonitorsStatusMONITORING {
			rec.DeploymentCircuitBreaker.Status = ecs.ServiceDeploymentRollbackMonitorsStatusMONITORINGCOMPLETE
		}
	}
}

// onActive reports whether the task's instance is ACTIVE (tasks on draining
// or vanished instances are being replaced).
func (d *decider) onActive(t *TaskState) bool {
	if t.OffCluster {
		return true
	}
	in := d.inst[t.InstanceID]
	return in != nil && in.Status == resource.InstanceActive
}

// parkedDaemon is a daemon task on a draining instance: it stays until the
// instance's other tasks are gone and does not hold up a deployment.
func (d *decider) parkedDaemon(t *TaskState) bool {
	if d.next.SchedulingStrategy != ecs.SchedulingStrategyDAEMON {
		return false
	}
	in := d.inst[t.InstanceID]
	return in != nil && in.Status == resource.InstanceDraining
}

// ---- 5. steady state

func (d *decider) steady() {
	p := d.next.Primary()
	steady := p.RolloutState == ecs.DeploymentRolloutStateCOMPLETED && len(d.next.Rollouts) == 1 &&
		len(d.acts.Launch) == 0 && len(d.acts.Stop) == 0
	if steady {
		total, healthy := 0, 0
		for _, t := range d.tasks {
			if t.Stopped() || d.parkedDaemon(t) {
				continue
			}
			total++
			if t.DeploymentID == p.Id && d.healthy(t) {
				healthy++
			}
		}
		steady = total == d.desired && healthy == d.desired
	}
	if steady && !d.next.Steady {
		d.event("has reached a steady state.")
	}
	d.next.Steady = steady
}

// ---- deleted services

// drain stops every task of a deleted (DRAINING) service and makes it
// INACTIVE once all of them are stopping or stopped.
func (d *decider) drain() {
	p := d.next.Primary()
	pid := ""
	if p != nil {
		pid = p.Id
	}
	busy := false
	for _, t := range d.tasks {
		if t.Stopped() {
			continue
		}
		if t.DesiredStatus != statusStopped {
			d.stop(t, fmt.Sprintf("Scaling activity initiated by (deployment %s)", pid))
		}
		if resource.TaskStatusRank(t.LastStatus) < resource.TaskStatusRank("STOPPING") {
			busy = true
		}
	}
	if busy {
		return
	}
	d.next.Status = resource.ServiceInactive
	now := d.now
	d.next.InactiveAt = &now
	d.next.Steady = false
	d.requeueAt(now.Add(InactiveRetention))
}

// collect deletes an INACTIVE record after its retention.
func (d *decider) collect() {
	if d.next.InactiveAt == nil {
		return
	}
	until := d.next.InactiveAt.Add(InactiveRetention)
	if !d.now.Before(until) {
		d.acts.Delete = true
		return
	}
	d.requeueAt(until)
}

// ---- helpers

func (d *decider) event(msg string) {
	d.acts.Events = append(d.acts.Events, fmt.Sprintf("(service %s) %s", d.next.ServiceName, msg))
}

func (d *decider) stop(t *TaskState, reason string) {
	if d.stopping[t.ID] {
		return
	}
	d.stopping[t.ID] = true
	d.acts.Stop = append(d.acts.Stop, Stop{TaskID: t.ID, StopCode: resource.StopServiceSchedulerInitiated, Reason: reason})
}

// stopEvent writes ECS's "has stopped N running tasks" event for this pass.
func (d *decider) stopEvent() {
	if len(d.acts.Stop) == 0 {
		return
	}
	var b strings.Builder
	for _, s := range d.acts.Stop {
		b.WriteString(" (task " + s.TaskID + ")")
	}
	d.event(fmt.Sprintf("has stopped %d running tasks:%s.", len(d.acts.Stop), b.String()))
}

func (d *decider) eligibleCount() int {
	n := 0
	for _, in := range d.insts {
		if in.Status == resource.InstanceActive && in.Eligible {
			n++
		}
	}
	return n
}

// throttled limits a launch of n tasks by the restart throttle and returns
// how many may start now.
func (d *decider) throttled(n int) int {
	if n <= 0 {
		return 0
	}
	th := d.next.Throttle
	if th.NotBefore != nil && d.now.Before(*th.NotBefore) {
		d.requeueAt(*th.NotBefore)
		return 0
	}
	if th.Failures >= throttleAfter {
		// Throttled: one attempt per delay.
		nb := d.now.Add(ThrottleDelay(th.Failures))
		d.next.Throttle.NotBefore = &nb
		return 1
	}
	return n
}

func cloneService(s *resource.Service) *resource.Service {
	out := new(resource.Service)
	if err := json.Unmarshal(resource.Encode(s), out); err != nil {
		panic(fmt.Sprintf("service: clone: %v", err))
	}
	return out
}

func sameRecord(a, b *resource.Service) bool {
	return string(resource.Encode(a)) == string(resource.Encode(b))
}

func byCreatedDesc(a, b *TaskState) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}
