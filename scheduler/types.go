// Package scheduler is pure placement: a cluster snapshot and a request in, a plan
// out. No I/O, no wall clock; randomness comes from the request's seed so any
// placement can be replayed. The planner commits plans; the scheduler never writes.
//
// See README.md for the pipeline.
package scheduler

import "time"

// Instance is one container instance as placement sees it: what is left on it.
type Instance struct {
	ID             string
	ARN            string
	Status         string // ACTIVE, DRAINING, ...
	AgentConnected bool
	// Remaining resources after the tasks already placed on it.
	CPU    int64
	Memory int64
	// Host ports in use (reserved ports included), by protocol.
	TCPPorts map[int32]bool
	UDPPorts map[int32]bool
	// Attributes: ecs.availability-zone, ecs.instance-type, ecs.capability.*,
	// custom ones. Valueless attributes map to "".
	Attributes map[string]string
	// RunningTasks is runningTasksCount (RUNNING tasks only) for the cluster
	// query language.
	RunningTasks int
	// GroupTasks counts the tasks on the instance that are not stopped, by task
	// group ("service:web", "family:batch", custom). Spread, distinctInstance
	// and task:group expressions read it.
	GroupTasks map[string]int
	// For the cluster query language.
	EC2InstanceID string
	AgentVersion  string
	RegisteredAt  time.Time
}

// Task is what one copy of a task needs from an instance.
type Task struct {
	CPU    int64
	Memory int64
	// Static host ports (dynamic ones are picked by Docker at start). Ignored
	// for the awsvpc and none network modes, which use no host ports.
	TCPPorts    []int32
	UDPPorts    []int32
	NetworkMode string // bridge (or ""), host, awsvpc, none
	// RequiredAttributes must be present on the instance (the task definition's
	// requiresAttributes, e.g. ecs.capability.task-eni).
	RequiredAttributes []Attribute
}

// Attribute is a name and an optional value an instance must carry.
type Attribute struct {
	Name  string
	Value string
}

// Strategy types and constraint types, spelled as ECS's API spells them.
const (
	StrategyRandom             = "random"
	StrategySpread             = "spread"
	StrategyBinpack            = "binpack"
	ConstraintMemberOf         = "memberOf"
	ConstraintDistinctInstance = "distinctInstance"
)

// Strategy is one placement strategy: Type random, spread or binpack; Field
// cpu or memory for binpack, instanceId, host or attribute:<name> for spread.
type Strategy struct {
	Type  string
	Field string
}

// Constraint is one placement constraint: Type memberOf with an Expression in
// the cluster query language, or distinctInstance.
type Constraint struct {
	Type       string
	Expression string
}

// Request asks for Count copies of Task.
type Request struct {
	Task  Task
	Count int
	// Group is the task group the copies join: "service:<name>" for a
	// service, "family:<family>" by default for RunTask. Spread counts tasks of
	// this group; distinctInstance keeps them apart.
	Group string
	// Strategies are applied in order as sort keys (up to 5). Empty means
	// random, ECS's default for RunTask; a service passes
	// DefaultServiceStrategy() when it has none.
	Strategies []Strategy
	// Constraints are binding: those of the task definition and of the call
	// together (up to 10).
	Constraints []Constraint
	// Seed makes tie-breaking and random deterministic.
	Seed int64
}

// Placement assigns one copy to an instance.
type Placement struct {
	InstanceID string
	ARN        string
}

// Failure explains why a copy could not be placed: Reason is ECS's code
// (RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:PORTS, AGENT, ATTRIBUTE,
// "MemberOf placement constraint unsatisfied.", ...) of the closest matching
// instance, InstanceID that instance (the one that got furthest through the
// pipeline), and Detail a per-stage account of every instance considered.
type Failure struct {
	Reason     string
	Detail     string
	InstanceID string
	ARN        string
}

// InstanceFailure is why one container instance rejected the task: ECS's
// RunTask failures[] has one entry per such instance (arn, reason).
type InstanceFailure struct {
	InstanceID string
	ARN        string
	Reason     string
	// Detail says more than ECS does, e.g. "needs 512 MiB, 256 left".
	Detail string
}

// Plan is the result: one Placement per placed copy, a Failure for each copy
// that fits nowhere, and — when any copy failed — the reason each ACTIVE
// instance refused, in instance ID order. NoInstances is set when the cluster
// had no ACTIVE container instance at all (ECS answers RunTask with an
// InvalidParameterException carrying ReasonNoInstances).
type Plan struct {
	Placements       []Placement
	Failures         []Failure
	InstanceFailures []InstanceFailure
	NoInstances      bool
}
