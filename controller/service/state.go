package service

import (
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// TaskState is what the decider needs of one of the service's tasks.
type TaskState struct {
	ID           string
	DeploymentID string
	InstanceID   string
	LastStatus   string
	// DesiredStatus STOPPED means a stop was asked for (the task still counts
	// towards the maximum until it has stopped).
	DesiredStatus string
	Health        ecs.HealthStatus
	// HasHealthCheck is set when a container of the task has a health check.
	HasHealthCheck bool
	CreatedAt      time.Time
	// StartedAt is when the task reached RUNNING (zero if it never did).
	StartedAt time.Time
	StoppedAt time.Time
	StopCode  string
	Protected bool
	CPU       int64
	Memory    int64
	// OffCluster is set for tasks not on one of the cluster's instances:
	// waiting for capacity (no instance yet) or on the Fargate pool. Their
	// instance is not the service's to judge.
	OffCluster bool
	// CapacityProvider is the provider the task was launched through ("" for
	// a launch type).
	CapacityProvider string
}

// Stopped reports whether the task has stopped.
func (t *TaskState) Stopped() bool { return t.LastStatus == statusStopped }

// InstanceState is what the decider needs of a container instance of the
// service's cluster.
type InstanceState struct {
	ID     string
	Status string // ACTIVE, DRAINING, ...
	// Eligible is set when the instance meets the service's placement
	// constraints (DAEMON services run one task on each eligible ACTIVE
	// instance).
	Eligible bool
	// OtherTasks counts the instance's tasks that are not stopped and do not
	// belong to the service (a daemon task on a draining instance stops last).
	OtherTasks int
	// View is the scheduler's view (attributes, remaining resources) for the
	// scale-in choice.
	View scheduler.Instance
}

// Launch asks for Count new tasks of a deployment; InstanceID pins them to
// one instance (DAEMON).
type Launch struct {
	DeploymentID string
	Count        int
	InstanceID   string
}

// Stop asks for a task to stop.
type Stop struct {
	TaskID   string
	StopCode string
	Reason   string
}

// Actions is one reconcile pass's decision.
type Actions struct {
	// Next is the service record as it should be stored (nil: unchanged). It
	// does not include Events.
	Next *resource.Service
	// Delete removes the record (an INACTIVE service past its retention).
	Delete bool
	// Events are new service events, oldest first, without the "has started
	// N tasks" events, which the loop writes once it knows the task ids.
	Events []string
	Launch []Launch
	Stop   []Stop
	// RequeueAfter asks for another pass after a delay (0: only when
	// something changes); Requeue asks for one at once (after a change of
	// structure, such as a rollback, that the next pass acts on).
	RequeueAfter time.Duration
	Requeue      bool
}

const (
	statusRunning = "RUNNING"
	statusStopped = "STOPPED"
)

// Tunables of the service scheduler that ECS documents.
const (
	// ThrottleCap is the longest delay between attempts to start tasks of a
	// service whose tasks keep failing to start.
	ThrottleCap = 27 * time.Minute
	// throttleBase is the first delay once throttling starts.
	throttleBase = 10 * time.Second
	// throttleAfter is how many consecutive failures to start are tolerated
	// before launches slow down.
	throttleAfter = 3
	// InactiveRetention is how long a deleted service stays describable as
	// INACTIVE before its record is collected.
	InactiveRetention = 2 * time.Hour
	// placementEventEvery keeps an unchanged "unable to place" event from
	// being repeated more often than this.
	placementEventEvery = 5 * time.Minute
)

// CircuitBreakerThreshold is the number of failed tasks after which the
// deployment circuit breaker fails a deployment: half the desired count,
// at least 3 and at most 200, as ECS documents.
func CircuitBreakerThreshold(desired int32) int32 {
	t := (desired + 1) / 2
	return min(max(t, 3), 200)
}

// ThrottleDelay is the wait before the next launch after n consecutive tasks
// failed to start: none for the first few, then doubling up to ThrottleCap.
func ThrottleDelay(n int32) time.Duration {
	if n < throttleAfter {
		return 0
	}
	d := throttleBase
	for i := int32(throttleAfter); i < n && d < ThrottleCap; i++ {
		d *= 2
	}
	return min(d, ThrottleCap)
}

// Bounds are the rolling-deployment limits for a desired count:
// at least MinHealthy healthy tasks, at most MaxTotal tasks not stopped.
type Bounds struct {
	MinHealthy int
	MaxTotal   int
}

// DeploymentBounds computes ceil(desired × minimumHealthyPercent / 100) and
// floor(desired × maximumPercent / 100). When they leave no room at all
// (100%/100%, or one task at 100%/150%), a deployment could never replace a
// task; the minimum then gives way by one, so tasks are replaced one at a
// time, stop-first.
func DeploymentBounds(desired int32, minPct, maxPct int32) Bounds {
	d := int(desired)
	b := Bounds{
		MinHealthy: (d*int(minPct) + 99) / 100,
		MaxTotal:   d * int(maxPct) / 100,
	}
	if b.MaxTotal > 0 && b.MinHealthy >= b.MaxTotal {
		b.MinHealthy = b.MaxTotal - 1
	}
	return b
}

// percents returns the service's minimumHealthyPercent and maximumPercent
// with ECS's defaults filled in.
func percents(svc *resource.Service) (int32, int32) {
	minPct, maxPct := int32(100), int32(200)
	if svc.SchedulingStrategy == ecs.SchedulingStrategyDAEMON {
		minPct, maxPct = 0, 100
	}
	if dc := svc.DeploymentConfiguration; dc != nil {
		if dc.MinimumHealthyPercent != nil {
			minPct = *dc.MinimumHealthyPercent
		}
		if dc.MaximumPercent != nil {
			maxPct = *dc.MaximumPercent
		}
	}
	return minPct, maxPct
}

func circuitBreaker(svc *resource.Service) (enable, rollback bool) {
	if dc := svc.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil {
		return dc.DeploymentCircuitBreaker.Enable, dc.DeploymentCircuitBreaker.Rollback
	}
	return false, false
}

func gracePeriod(svc *resource.Service) time.Duration {
	if svc.HealthCheckGracePeriodSeconds == nil {
		return 0
	}
	return time.Duration(*svc.HealthCheckGracePeriodSeconds) * time.Second
}
