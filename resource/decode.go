package resource

import (
	"encoding/json"
	"fmt"
)

// Decode is the cache's decoder: it turns a stored value into its record by the
// key's kind. Unknown kinds decode to nil and are not cached.
func Decode(key string, value []byte) (any, error) {
	_, kind, _, ok := SplitKey(key)
	if !ok {
		return nil, nil
	}
	var obj any
	switch kind {
	case KindCluster:
		obj = new(Cluster)
	case KindFamily:
		obj = new(Family)
	case KindTaskDefinition:
		obj = new(TaskDefinition)
	case KindAccountSetting:
		obj = new(AccountSetting)
	case KindIdempotency:
		obj = new(Idempotency)
	default:
		if d, ok := decoders[kind]; ok {
			obj = d()
		} else {
			return nil, nil
		}
	}
	if err := json.Unmarshal(value, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return obj, nil
}

// decoders lets later resources (tasks, instances, services) register their kind.
var decoders = map[string]func() any{}

// RegisterKind makes Decode produce new() for keys of kind. Call from init.
func RegisterKind(kind string, new func() any) { decoders[kind] = new }

// Encode is the one place records become stored bytes.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Records are plain data; a marshal failure is a programming error.
		panic(fmt.Sprintf("resource: encode %T: %v", v, err))
	}
	return b
}
