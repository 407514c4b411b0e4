// Package cql parses and evaluates Amazon ECS's cluster query language: the
// expressions of memberOf placement constraints and of ListContainerInstances
// --filter, e.g.
//
//	attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d
//	task:group == service:production
//	not(task:group == database)
//	ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']
//
// Parse once, evaluate many times: Eval is allocation-free and safe for
// concurrent use.
package cql

import (
	"fmt"
	"regexp"
	"time"
)

// Error is a parse error; Pos is the 0-based byte offset it points at.
type Error struct {
	Pos int
	Msg string
}

// Error reports the position 1-based, as people count columns.
func (e *Error) Error() string { return fmt.Sprintf("at position %d: %s", e.Pos+1, e.Msg) }

func errorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Subject is what a comparison looks at.
type Subject uint8

// The subjects ECS documents.
const (
	SubjectAttribute         Subject = iota + 1 // attribute:<name>
	SubjectTaskGroup                            // task:group
	SubjectAgentConnected                       // agentConnected
	SubjectAgentVersion                         // agentVersion
	SubjectEC2InstanceID                        // ec2InstanceId
	SubjectRegisteredAt                         // registeredAt
	SubjectRunningTasksCount                    // runningTasksCount
)

var subjectNames = map[string]Subject{
	"task:group":        SubjectTaskGroup,
	"agentConnected":    SubjectAgentConnected,
	"agentVersion":      SubjectAgentVersion,
	"ec2InstanceId":     SubjectEC2InstanceID,
	"registeredAt":      SubjectRegisteredAt,
	"runningTasksCount": SubjectRunningTasksCount,
}

// Op is a comparison operator.
type Op uint8

// Operators; each has a symbolic and a word spelling (see opNames).
const (
	OpEq Op = iota + 1
	OpNe
	OpGt
	OpGe
	OpLt
	OpLe
	OpExists
	OpNotExists
	OpIn
	OpNotIn
	OpMatches
	OpNotMatches
)

var opNames = map[Op]string{
	OpEq: "==", OpNe: "!=", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<=",
	OpExists: "exists", OpNotExists: "!exists", OpIn: "in", OpNotIn: "not_in",
	OpMatches: "=~", OpNotMatches: "!~",
}

func (o Op) String() string { return opNames[o] }

// wordOps are the operator words, matched case-insensitively.
var wordOps = map[string]Op{
	"equals": OpEq, "not_equals": OpNe,
	"greater_than": OpGt, "greater_than_equal": OpGe,
	"less_than": OpLt, "less_than_equal": OpLe,
	"exists": OpExists, "not_exists": OpNotExists,
	"in": OpIn, "not_in": OpNotIn,
	"matches": OpMatches, "not_matches": OpNotMatches,
}

var symbolOps = map[string]Op{
	"==": OpEq, "!=": OpNe, ">": OpGt, ">=": OpGe, "<": OpLt, "<=": OpLe,
	"=~": OpMatches, "!~": OpNotMatches,
}

// validOps lists, per subject, the operators ECS documents for it. Attributes
// take every operator; task:group takes the equality, list, pattern and
// existence ones (ordering task groups means nothing).
var validOps = map[Subject][]Op{
	SubjectAttribute:         {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe, OpExists, OpNotExists, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectTaskGroup:         {OpEq, OpNe, OpExists, OpNotExists, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectAgentConnected:    {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectAgentVersion:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectEC2InstanceID:     {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectRegisteredAt:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectRunningTasksCount: {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
}

// Expr is a parsed expression.
type Expr struct {
	src  string
	root node
	// groups is true when the expression looks at task:group, the only
	// subject a placement in progress changes.
	groups    bool
	attrs     []string
	onlyAttrs bool
}

// String returns the expression as written.
func (e *Expr) String() string { return e.src }

// UsesTaskGroup reports whether the expression depends on the task groups on an
// instance (and so may change as tasks are placed).
func (e *Expr) UsesTaskGroup() bool { return e.groups }

// Attributes returns the attribute names the expression refers to, each once,
// in order of first use.
func (e *Expr) Attributes() []string { return e.attrs }

// OnlyAttributes reports whether every comparison is about an attribute, so
// the result depends on the attributes' values alone.
func (e *Expr) OnlyAttributes() bool { return e.onlyAttrs }

// Eval reports whether t satisfies the expression.
func (e *Expr) Eval(t Target) bool { return e.root.eval(t) }

type node interface {
	eval(t Target) bool
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }

func (n *andNode) eval(t Target) bool { return n.l.eval(t) && n.r.eval(t) }
func (n *orNode) eval(t Target) bool  { return n.l.eval(t) || n.r.eval(t) }
func (n *notNode) eval(t Target) bool { return !n.x.eval(t) }

// cmpNode is one "subject operator [argument]" comparison. Arguments are parsed
// once, in the form the subject compares by.
type cmpNode struct {
	subject Subject
	attr    string // for SubjectAttribute
	op      Op
	strs    []string    // the argument(s) as written
	nums    []int64     // runningTasksCount
	vers    [][]int64   // agentVersion
	times   []time.Time // registeredAt
	dayOnly bool        // registeredAt argument was a date without a time
	re      *regexp.Regexp
}
