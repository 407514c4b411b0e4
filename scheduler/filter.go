package scheduler

import (
	"sync"
	"time"

	"github.com/ecsd/ecsd/scheduler/cql"
)

// ECS's failure reasons.
const (
	ReasonCPU              = "RESOURCE:CPU"
	ReasonMemory           = "RESOURCE:MEMORY"
	ReasonPorts            = "RESOURCE:PORTS"
	ReasonPortsUDP         = "RESOURCE:PORTS_UDP"
	ReasonAgent            = "AGENT"
	ReasonAttribute        = "ATTRIBUTE"
	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
	ReasonNoInstances      = "No Container Instances were found in your cluster."
)

// TaskENICapability is the attribute an instance needs for awsvpc tasks.
const TaskENICapability = "ecs.capability.task-eni"

// stage is one step of the feasibility pipeline, in the order they run. The
// order is ECS's: an instance must be ACTIVE and connected and have what the
// task definition requires before its resources matter (CPU, memory, ports),
// and only then are the binding constraints checked. A later stage is a
// "closer match": the instance got further before it was refused.
type stage uint8

const (
	stageOK        stage = iota
	stageStatus          // not ACTIVE (draining, registering, ...): never a candidate
	stageAgent           // agent disconnected
	stageAttribute       // a required attribute (or the network mode's capability) missing
	stageCPU
	stageMemory
	stagePorts    // a static TCP host port in use
	stagePortsUDP // a static UDP host port in use
	stageMemberOf // a memberOf expression false
	stageDistinct // distinctInstance: a task of the group already there
)

var stageReasons = [...]string{
	stageAgent:     ReasonAgent,
	stageAttribute: ReasonAttribute,
	stageCPU:       ReasonCPU,
	stageMemory:    ReasonMemory,
	stagePorts:     ReasonPorts,
	stagePortsUDP:  ReasonPortsUDP,
	stageMemberOf:  ReasonMemberOf,
	stageDistinct:  ReasonDistinctInstance,
}

// reject records why an instance is not a candidate: the stage and what in it
// (the attribute index, the port, the constraint index).
type reject struct {
	stage stage
	arg   int32
}

// target adapts a node to the cluster query language, counting the copies
// placed on it so far in this request as tasks of the request's group
// (runningTasksCount counts RUNNING tasks only, so new copies do not add to it).
type target struct {
	p  *placer
	n  *node
	in *Instance
}

var _ cql.Target = target{}

func (t target) Attribute(name string) (string, bool) {
	v, ok := t.in.Attributes[name]
	return v, ok
}
func (t target) AgentConnected() bool    { return t.in.AgentConnected }
func (t target) AgentVersion() string    { return t.in.AgentVersion }
func (t target) EC2InstanceID() string   { return t.in.EC2InstanceID }
func (t target) RegisteredAt() time.Time { return t.in.RegisteredAt }
func (t target) RunningTasksCount() int  { return t.in.RunningTasks }
func (t target) HasTaskGroup(g string) bool {
	if t.n.placed > 0 && g == t.p.group {
		return true
	}
	return t.in.GroupTasks[g] > 0
}
func (t target) EachTaskGroup(fn func(string) bool) {
	own := t.n.placed > 0
	for g, c := range t.in.GroupTasks {
		if g == t.p.group {
			own = own || c > 0
			continue
		}
		if c > 0 && !fn(g) {
			return
		}
	}
	if own {
		fn(t.p.group)
	}
}

// Target returns a cluster query language view of an instance, e.g. for
// ListContainerInstances --filter.
func (in *Instance) Target() cql.Target {
	return target{p: &placer{}, n: &node{}, in: in}
}

// check runs the pipeline on one node in its current state. With static set
// it evaluates every memberOf expression; without, only those that look at
// task:group (the rest depend on nothing a placement changes).
func (p *placer) check(n *node, static bool) reject {
	in := &p.ins[n.src]
	t := &p.task
	if static {
		if in.Status != "ACTIVE" {
			return reject{stage: stageStatus}
		}
		if !in.AgentConnected {
			return reject{stage: stageAgent}
		}
		for i, a := range t.RequiredAttributes {
			v, ok := in.Attributes[a.Name]
			if !ok || (a.Value != "" && v != a.Value) {
				return reject{stage: stageAttribute, arg: int32(i)}
			}
		}
		if p.needsENI {
			if _, ok := in.Attributes[TaskENICapability]; !ok {
				return reject{stage: stageAttribute, arg: -1}
			}
		}
	}
	if n.cpu < t.CPU {
		return reject{stage: stageCPU}
	}
	if n.mem < t.Memory {
		return reject{stage: stageMemory}
	}
	if len(t.TCPPorts) > 0 {
		if p.tcpDup >= 0 {
			return reject{stage: stagePorts, arg: p.tcpDup}
		}
		for _, port := range t.TCPPorts {
			// A copy placed here already holds the task's ports.
			if n.placed > 0 || in.TCPPorts[port] {
				return reject{stage: stagePorts, arg: port}
			}
		}
	}
	if len(t.UDPPorts) > 0 {
		if p.udpDup >= 0 {
			return reject{stage: stagePortsUDP, arg: p.udpDup}
		}
		for _, port := range t.UDPPorts {
			if n.placed > 0 || in.UDPPorts[port] {
				return reject{stage: stagePortsUDP, arg: port}
			}
		}
	}
	for i, c := range p.cons {
		if !static && !c.dynamic {
			continue
		}
		if !p.memberOf(c, n) {
			return reject{stage: stageMemberOf, arg: int32(i)}
		}
	}
	if p.distinct && n.group > 0 {
		return reject{stage: stageDistinct}
	}
	return reject{}
}

// memberOf evaluates one constraint on a node. Expressions about a single
// attribute are memoised by the attribute's value: thousands of instances
// share a handful of instance types and zones.
func (p *placer) memberOf(c *constraint, n *node) bool {
	if c.expr == nil {
		return false // unparseable (the caller skipped Validate)
	}
	in := &p.ins[n.src]
	if !c.memoize {
		return c.expr.Eval(target{p: p, n: n, in: in})
	}
	v, ok := in.Attributes[c.memoAttr]
	slot := &c.missing
	if ok {
		id, fresh := c.values.id(v)
		if fresh {
			c.results = append(c.results, 0)
		}
		slot = &c.results[id]
	}
	if *slot == 0 {
		*slot = memoFalse
		if c.expr.Eval(target{p: p, n: n, in: in}) {
			*slot = memoTrue
		}
	}
	return *slot == memoTrue
}

const (
	memoTrue  = 1
	memoFalse = 2
)

// constraint is a memberOf constraint prepared for one request.
type constraint struct {
	src     string
	expr    *cql.Expr
	dynamic bool // looks at task:group, so placements can change it
	// Memo by attribute value when the expression reads exactly one attribute
	// and nothing else.
	memoize  bool
	memoAttr string
	values   interner
	results  []uint8 // by value id: 0 unknown, memoTrue, memoFalse
	missing  uint8   // for instances without the attribute
}

// interner numbers distinct strings. An attribute has a handful of values
// across a fleet, and a linear scan of a few short strings is cheaper than
// hashing each instance's value.
type interner struct {
	small []string
	big   map[string]int32
}

// id returns s's number and whether s is new.
func (t *interner) id(s string) (int32, bool) {
	for i, v := range t.small {
		if v == s {
			return int32(i), false
		}
	}
	if t.big == nil {
		if len(t.small) < 8 {
			t.small = append(t.small, s)
			return int32(len(t.small) - 1), true
		}
		t.big = map[string]int32{}
	}
	if id, ok := t.big[s]; ok {
		return id, false
	}
	id := int32(len(t.small) + len(t.big))
	t.big[s] = id
	return id, true
}

// parsed caches parsed expressions: services place with the same few
// constraints again and again, and compiling a pattern costs more than
// evaluating it on thousands of instances. A parsed Expr is immutable.
var parsed struct {
	sync.Mutex
	m map[string]*cql.Expr
}

func parseCached(src string) (*cql.Expr, error) {
	parsed.Lock()
	e, ok := parsed.m[src]
	parsed.Unlock()
	if ok {
		return e, nil
	}
	e, err := cql.Parse(src)
	if err != nil {
		return nil, err
	}
	parsed.Lock()
	if len(parsed.m) >= 1024 {
		clear(parsed.m) // bounded; the working set is small
	}
	if parsed.m == nil {
		parsed.m = map[string]*cql.Expr{}
	}
	parsed.m[src] = e
	parsed.Unlock()
	return e, nil
}

func newConstraint(src string) *constraint {
	c := &constraint{src: src}
	e, err := parseCached(src)
	if err != nil {
		return c
	}
	c.expr = e
	c.dynamic = e.UsesTaskGroup()
	if attrs := e.Attributes(); len(attrs) == 1 && e.OnlyAttributes() {
		c.memoize, c.memoAttr = true, attrs[0]
	}
	return c
}
