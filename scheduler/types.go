// Package scheduler is pure placement: a cluster snapshot and a request in, a plan
// out. No I/O, no wall clock; randomness comes from the request's seed so any
// placement can be replayed. The planner commits plans; the scheduler never writes.
package scheduler

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
	Attributes   map[string]string
	RunningTasks int
}

// Task is what one copy of a task needs from an instance.
type Task struct {
	CPU    int64
	Memory int64
	// Static host ports (dynamic ones are picked by Docker at start).
	TCPPorts    []int32
	UDPPorts    []int32
	NetworkMode string // bridge, host, awsvpc, none
	// RequiredAttributes must be present on the instance (the task definition's
	// requiresAttributes, e.g. ecs.capability.task-eni).
	RequiredAttributes []Attribute
}

// Attribute is a name and an optional value an instance must carry.
type Attribute struct {
	Name  string
	Value string
}

// Request asks for Count copies of Task.
type Request struct {
	Task  Task
	Count int
	// Seed makes tie-breaking deterministic.
	Seed int64
}

// Placement assigns one copy to an instance.
type Placement struct {
	InstanceID string
}

// Failure explains why a copy could not be placed: Reason is ECS's code
// (RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:PORTS, AGENT, ATTRIBUTE, ...) and
// Detail a per-stage account of the instances considered.
type Failure struct {
	Reason string
	Detail string
}

// Plan is the result: one Placement per placed copy, and a Failure for each copy
// that fits nowhere (in ECS, RunTask reports those in failures[]).
type Plan struct {
	Placements []Placement
	Failures   []Failure
}
