package ecs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Validator collects the first constraint violation found while walking an input.
// ECS reports one problem at a time, naming the member; so do we.
type Validator struct {
	err *Error
}

// Err returns the violation found, or nil.
func (vd *Validator) Err() error {
	if vd.err == nil {
		return nil
	}
	return vd.err
}

func bound(f float64) *float64 { return &f }

func (vd *Validator) fail(code, format string, args ...any) {
	if vd.err == nil {
		vd.err = &Error{Code: code, Message: fmt.Sprintf(format, args...)}
	}
}

func (vd *Validator) join(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

func (vd *Validator) index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func (vd *Validator) missing(path string) {
	vd.fail(CodeInvalidParameter, "%s is required but was not provided.", path)
}

func (vd *Validator) enum(path, got string, values []string) {
	vd.fail(CodeInvalidParameter, "%s: %q is not a valid value; valid values are %s.", path, got, strings.Join(values, ", "))
}

func (vd *Validator) length(path string, n int, min, max *float64) {
	if min != nil && float64(n) < *min {
		vd.fail(CodeInvalidParameter, "%s must have a length of at least %v; got %d.", path, *min, n)
	}
	if max != nil && float64(n) > *max {
		vd.fail(CodeInvalidParameter, "%s must have a length of at most %v; got %d.", path, *max, n)
	}
}

func (vd *Validator) rangef(path string, v float64, min, max *float64) {
	if min != nil && v < *min {
		vd.fail(CodeInvalidParameter, "%s must be at least %v; got %v.", path, *min, v)
	}
	if max != nil && v > *max {
		vd.fail(CodeInvalidParameter, "%s must be at most %v; got %v.", path, *max, v)
	}
}

func (vd *Validator) pattern(path, v string, re *regexp.Regexp) {
	if !re.MatchString(v) {
		vd.fail(CodeInvalidParameter, "%s %q does not match the pattern %s.", path, v, re.String())
	}
}

// Validatable is implemented by every generated input shape.
type Validatable interface{ Validate() error }
