// Package resource names ECS resources as ecsd stores them: the key layout in the
// store, ARNs in ECS's long format, and the stored records (API shapes plus a small
// internal envelope). It is shared by the API server, the cache decoder and the
// controllers; it does no I/O.
package resource

import (
	"fmt"
	"strings"
)

// Root prefixes every key ecsd writes; the version lets the layout change later.
const Root = "/ecsd/v1/"

// Scope is the account and region a request acts in (from its SigV4 credential
// scope). Every resource key lives under its scope.
type Scope struct {
	Account string
	Region  string
}

// Prefix is the key prefix of everything in the scope.
func (s Scope) Prefix() string { return Root + s.Account + "/" + s.Region + "/" }

func (s Scope) String() string { return s.Account + "/" + s.Region }

// Kinds of stored objects: the path segment after the scope prefix.
const (
	KindCluster           = "clusters"
	KindTaskDefinition    = "taskdefs"
	KindFamily            = "families"
	KindAccountSetting    = "settings"
	KindIdempotency       = "idempotency"
	KindContainerInstance = "instances"
	KindTask              = "tasks"
	KindService           = "services"
)

// Key builds a key of kind under the scope from path parts.
func (s Scope) Key(kind string, parts ...string) string {
	return s.Prefix() + kind + "/" + strings.Join(parts, "/")
}

// KindPrefix is the prefix of every key of kind in the scope (with a trailing slash).
func (s Scope) KindPrefix(kind string, parts ...string) string {
	if len(parts) == 0 {
		return s.Prefix() + kind + "/"
	}
	return s.Key(kind, parts...) + "/"
}

// ClusterKey is the key of a cluster record.
func (s Scope) ClusterKey(name string) string { return s.Key(KindCluster, name) }

// FamilyKey is the key of a task definition family record (its revision counter).
func (s Scope) FamilyKey(family string) string { return s.Key(KindFamily, family) }

// TaskDefinitionKey is the key of one revision; revisions are zero-padded so key
// order is revision order.
func (s Scope) TaskDefinitionKey(family string, revision int32) string {
	return s.Key(KindTaskDefinition, family, fmt.Sprintf("%010d", revision))
}

// SplitKey returns the scope, kind and remaining parts of a key under Root.
func SplitKey(key string) (Scope, string, []string, bool) {
	rest, ok := strings.CutPrefix(key, Root)
	if !ok {
		return Scope{}, "", nil, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 4 {
		return Scope{}, "", nil, false
	}
	return Scope{Account: parts[0], Region: parts[1]}, parts[2], parts[3:], true
}
