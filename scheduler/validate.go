package scheduler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ecsd/ecsd/scheduler/cql"
)

// ECS's limits on placement.
const (
	MaxStrategies       = 5    // per task or service
	MaxConstraints      = 10   // per task: the task definition's and the call's together
	MaxExpressionLength = 2000 // characters in a memberOf expression
)

// AZAttribute is the attribute ECS spreads services across by default.
const AZAttribute = "ecs.availability-zone"

// DefaultRunTaskStrategy is ECS's placement for RunTask and StartTask
// without a strategy: random.
func DefaultRunTaskStrategy() []Strategy {
	return []Strategy{{Type: StrategyRandom}}
}

// DefaultServiceStrategy is how ECS's service scheduler places (and picks
// tasks to stop) without a strategy: spread across Availability Zones, then
// across the instances in each zone.
func DefaultServiceStrategy() []Strategy {
	return []Strategy{
		{Type: StrategySpread, Field: "attribute:" + AZAttribute},
		{Type: StrategySpread, Field: "instanceId"},
	}
}

// FamilyGroup is RunTask's default task group, family:<family>.
func FamilyGroup(family string) string { return "family:" + family }

// ServiceGroup is the task group of a service's tasks, service:<name>.
func ServiceGroup(service string) string { return "service:" + service }

// ErrInvalidParameter classifies every validation error of this package; the
// API maps it to InvalidParameterException.
var ErrInvalidParameter = errors.New("invalid placement parameter")

// ParamError is a validation error naming the offending field, e.g.
// "placementConstraints[1].expression: at position 17: expected an operator
// after attribute:ecs.instance-type". Err holds the cause (a *cql.Error for a
// bad expression).
type ParamError struct {
	Field string
	Msg   string
	Err   error
}

func (e *ParamError) Error() string {
	if e.Err != nil {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Field + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidParameter) true.
func (e *ParamError) Is(target error) bool { return target == ErrInvalidParameter }

func (e *ParamError) Unwrap() error { return e.Err }

// ValidateStrategies checks placement strategies as ECS does; field is the
// parameter's name for messages (placementStrategy).
func ValidateStrategies(field string, s []Strategy) error {
	if len(s) > MaxStrategies {
		return &ParamError{Field: field, Msg: fmt.Sprintf("at most %d placement strategies are allowed, got %d", MaxStrategies, len(s))}
	}
	for i, st := range s {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch st.Type {
		case StrategyRandom:
			// ECS ignores field for random.
		case StrategyBinpack:
			if _, ok := binpackField(st.Field); !ok {
				return &ParamError{Field: at + ".field", Msg: fmt.Sprintf("binpack takes field cpu or memory, not %q", st.Field)}
			}
		case StrategySpread:
			if st.Field == "" {
				return &ParamError{Field: at + ".field", Msg: "spread needs a field: instanceId, host or attribute:<name>"}
			}
			if _, _, ok := spreadField(st.Field); !ok {
				return &ParamError{Field: at + ".field", Msg: fmt.Sprintf("spread takes field instanceId, host or attribute:<name>, not %q", st.Field)}
			}
		case "":
			return &ParamError{Field: at + ".type", Msg: "a placement strategy needs a type: random, spread or binpack"}
		default:
			return &ParamError{Field: at + ".type", Msg: fmt.Sprintf("unknown placement strategy type %q (random, spread or binpack)", st.Type)}
		}
	}
	return nil
}

// ValidateConstraints checks placement constraints as ECS does: at most 10,
// memberOf with a valid expression of at most 2000 characters,
// distinctInstance without one. Pass the task definition's and the call's
// constraints together for the limit to count both.
func ValidateConstraints(field string, c []Constraint) error {
	if len(c) > MaxConstraints {
		return &ParamError{Field: field, Msg: fmt.Sprintf("at most %d placement constraints are allowed per task (task definition and request together), got %d", MaxConstraints, len(c))}
	}
	for i, con := range c {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch con.Type {
		case ConstraintMemberOf:
			if _, err := parseExpression(at+".expression", con.Expression); err != nil {
				return err
			}
		case ConstraintDistinctInstance:
			if con.Expression != "" {
				return &ParamError{Field: at + ".expression", Msg: "a distinctInstance constraint takes no expression"}
			}
		case "":
			return &ParamError{Field: at + ".type", Msg: "a placement constraint needs a type: memberOf or distinctInstance"}
		default:
			return &ParamError{Field: at + ".type", Msg: fmt.Sprintf("unknown placement constraint type %q (memberOf or distinctInstance)", con.Type)}
		}
	}
	return nil
}

// ValidateTaskDefinitionConstraints checks a task definition's constraints:
// only memberOf is allowed there.
func ValidateTaskDefinitionConstraints(field string, c []Constraint) error {
	for i, con := range c {
		if con.Type == ConstraintDistinctInstance {
			return &ParamError{Field: fmt.Sprintf("%s[%d].type", field, i), Msg: "distinctInstance is not supported in a task definition; set it on the service or RunTask"}
		}
	}
	return ValidateConstraints(field, c)
}

// ValidateExpression checks one cluster query language expression, e.g. the
// --filter of ListContainerInstances.
func ValidateExpression(field, expr string) (*cql.Expr, error) {
	return parseExpression(field, expr)
}

func parseExpression(field, expr string) (*cql.Expr, error) {
	if expr == "" {
		return nil, &ParamError{Field: field, Msg: "an expression is required"}
	}
	if len(expr) > MaxExpressionLength {
		return nil, &ParamError{Field: field, Msg: fmt.Sprintf("an expression may be at most %d characters, got %d", MaxExpressionLength, len(expr))}
	}
	e, err := cql.Parse(expr)
	if err != nil {
		return nil, &ParamError{Field: field, Err: err}
	}
	return e, nil
}

// Validate checks the request's strategies and constraints.
func (r *Request) Validate() error {
	if err := ValidateStrategies("placementStrategy", r.Strategies); err != nil {
		return err
	}
	return ValidateConstraints("placementConstraints", r.Constraints)
}

// binpackField returns the resource a binpack field names.
func binpackField(f string) (keyKind, bool) {
	switch strings.ToLower(f) {
	case "cpu":
		return kBinpackCPU, true
	case "memory":
		return kBinpackMemory, true
	}
	return 0, false
}

// spreadField resolves a spread field: instanceId and host are the same
// (each instance is its own value); attribute:<name> spreads over the
// attribute's values.
func spreadField(f string) (kind keyKind, attr string, ok bool) {
	if strings.EqualFold(f, "instanceId") || strings.EqualFold(f, "host") {
		return kSpreadInstance, "", true
	}
	if name, found := strings.CutPrefix(f, "attribute:"); found && name != "" {
		return kSpreadAttribute, name, true
	}
	return 0, "", false
}
