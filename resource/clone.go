package resource

import (
	"encoding/json"
	"fmt"
)

// Clone deep-copies a record, through its stored encoding: records read from
// the cache are shared and must be cloned before they are changed. Records
// always encode (they are plain data), so a failure is a programming error.
func Clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	return out
}
