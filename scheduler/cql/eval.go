package cql

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is what an expression is evaluated against: one container instance.
type Target interface {
	// Attribute returns an attribute's value; ok is false when the instance
	// does not carry it (a valueless attribute is present with value "").
	Attribute(name string) (value string, ok bool)
	AgentConnected() bool
	AgentVersion() string
	EC2InstanceID() string
	RegisteredAt() time.Time
	RunningTasksCount() int
	// HasTaskGroup reports whether at least one task of group runs (or is
	// pending) on the instance.
	HasTaskGroup(group string) bool
	// EachTaskGroup calls fn with each task group that has at least one task on
	// the instance, until fn returns false.
	EachTaskGroup(fn func(group string) bool)
}

// Object is a plain Target, for callers that have the fields at hand (e.g.
// ListContainerInstances --filter).
type Object struct {
	Attributes        map[string]string
	Connected         bool
	Version           string
	EC2ID             string
	Registered        time.Time
	RunningTasks      int
	TaskGroups        []string
	TaskGroupsByCount map[string]int // alternative to TaskGroups: groups with a count > 0
}

var _ Target = (*Object)(nil)

func (o *Object) Attribute(name string) (string, bool) { v, ok := o.Attributes[name]; return v, ok }
func (o *Object) AgentConnected() bool                 { return o.Connected }
func (o *Object) AgentVersion() string                 { return o.Version }
func (o *Object) EC2InstanceID() string                { return o.EC2ID }
func (o *Object) RegisteredAt() time.Time              { return o.Registered }
func (o *Object) RunningTasksCount() int               { return o.RunningTasks }
func (o *Object) HasTaskGroup(g string) bool {
	return slices.Contains(o.TaskGroups, g) || o.TaskGroupsByCount[g] > 0
}
func (o *Object) EachTaskGroup(fn func(string) bool) {
	for _, g := range o.TaskGroups {
		if !fn(g) {
			return
		}
	}
	for g, n := range o.TaskGroupsByCount {
		if n > 0 && !fn(g) {
			return
		}
	}
}

// eval evaluates one comparison.
//
// Absent values: a comparison on an attribute the instance lacks is false,
// negative ones included ("attribute:stack != prod" selects instances that have
// a stack attribute other than prod, as ECS documents); only !exists is true.
// task:group is a set: the positive operators hold when some group on the
// instance satisfies them, and the negative ones are their exact negation (so
// "task:group != database" also selects empty instances).
func (n *cmpNode) eval(t Target) bool {
	switch n.subject {
	case SubjectAttribute:
		v, ok := t.Attribute(n.attr)
		switch n.op {
		case OpExists:
			return ok
		case OpNotExists:
			return !ok
		}
		return ok && n.evalString(v)
	case SubjectTaskGroup:
		op, neg := n.op, false
		switch op {
		case OpExists, OpNotExists:
			return anyTaskGroup(t, nil) == (op == OpExists)
		case OpNe:
			op, neg = OpEq, true
		case OpNotIn:
			op, neg = OpIn, true
		case OpNotMatches:
			op, neg = OpMatches, true
		}
		hit := false
		switch op {
		case OpEq:
			hit = t.HasTaskGroup(n.strs[0])
		case OpIn:
			for _, g := range n.strs {
				if hit = t.HasTaskGroup(g); hit {
					break
				}
			}
		case OpMatches:
			hit = anyTaskGroup(t, n.re)
		}
		return hit != neg
	case SubjectAgentConnected:
		return n.evalString(strconv.FormatBool(t.AgentConnected()))
	case SubjectEC2InstanceID:
		return n.evalString(t.EC2InstanceID())
	case SubjectAgentVersion:
		v, ok := parseVersion(t.AgentVersion())
		if !ok {
			return false
		}
		return n.ordered(compareVersions(v, n.vers[0]))
	case SubjectRegisteredAt:
		at := t.RegisteredAt()
		if at.IsZero() {
			return false
		}
		arg := n.times[0]
		if n.dayOnly {
			at = at.UTC().Truncate(24 * time.Hour)
		}
		return n.ordered(at.Compare(arg))
	case SubjectRunningTasksCount:
		c := int64(t.RunningTasksCount())
		switch n.op {
		case OpIn:
			return slices.Contains(n.nums, c)
		case OpNotIn:
			return !slices.Contains(n.nums, c)
		}
		return n.ordered(cmp.Compare(c, n.nums[0]))
	}
	return false
}

// anyTaskGroup reports whether the instance has a task group (matching re,
// when given). It is a function of its own so that the closure's captured
// result escapes only on this path, keeping the others allocation-free.
func anyTaskGroup(t Target, re *regexp.Regexp) bool {
	hit := false
	t.EachTaskGroup(func(g string) bool {
		hit = re == nil || re.MatchString(g)
		return !hit
	})
	return hit
}

// evalString applies the operator to a string value.
func (n *cmpNode) evalString(v string) bool {
	switch n.op {
	case OpEq:
		return v == n.strs[0]
	case OpNe:
		return v != n.strs[0]
	case OpIn:
		return slices.Contains(n.strs, v)
	case OpNotIn:
		return !slices.Contains(n.strs, v)
	case OpMatches:
		return n.re.MatchString(v)
	case OpNotMatches:
		return !n.re.MatchString(v)
	case OpGt, OpGe, OpLt, OpLe:
		return n.ordered(compareValues(v, n.strs[0]))
	}
	return false
}

// ordered applies an ordering or equality operator to a comparison result.
func (n *cmpNode) ordered(c int) bool {
	switch n.op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	}
	return false
}

// compareValues orders two attribute values: as numbers when both are, as
// versions when both are dotted numbers (so 1.10 > 1.9), else as strings.
func compareValues(a, b string) int {
	if x, err := strconv.ParseFloat(a, 64); err == nil {
		if y, err := strconv.ParseFloat(b, 64); err == nil && strings.Count(a, ".") <= 1 && strings.Count(b, ".") <= 1 {
			return cmp.Compare(x, y)
		}
	}
	if va, ok := parseVersion(a); ok {
		if vb, ok := parseVersion(b); ok {
			return compareVersions(va, vb)
		}
	}
	return strings.Compare(a, b)
}

// compareVersions compares dotted versions; missing parts count as 0.
func compareVersions(a, b []int64) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}
