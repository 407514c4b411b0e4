package resource

import (
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
)

// Taggable is a stored record that carries ECS tags. TagResource, UntagResource
// and ListTagsForResource work on any record that implements it, found through
// the ARN type registry below, so a new resource kind plugs in without touching
// the tag handlers.
type Taggable interface {
	GetTags() []ecs.Tag
	SetTags([]ecs.Tag)
}

// TagGuard is implemented by records that refuse tag changes in some states
// (an INACTIVE cluster). The error is returned to the client as is.
type TagGuard interface {
	TagWriteError() error
}

var (
	_ Taggable = (*Cluster)(nil)
	_ TagGuard = (*Cluster)(nil)
	_ Taggable = (*TaskDefinition)(nil)
)

func (c *Cluster) GetTags() []ecs.Tag  { return c.Tags }
func (c *Cluster) SetTags(t []ecs.Tag) { c.Tags = t }

// TagWriteError refuses tag changes on a deleted cluster the way ECS refuses
// any change to one: the cluster counts as not found.
func (c *Cluster) TagWriteError() error {
	if c.Status == "INACTIVE" {
		return ecs.Errorf(ecs.CodeClusterNotFound, "The referenced cluster %s was inactive.", c.ClusterName)
	}
	return nil
}

func (d *TaskDefinition) GetTags() []ecs.Tag  { return d.Tags }
func (d *TaskDefinition) SetTags(t []ecs.Tag) { d.Tags = t }

// ARNResolver maps a parsed ARN of one resource type to the key of its stored
// record (in the ARN's own scope). ok is false when the resource part is not a
// well-formed id for the type.
type ARNResolver func(ARN) (key string, ok bool)

// arnTypes is filled from init functions only, so reads need no lock.
var arnTypes = map[string]ARNResolver{}

// RegisterARNType makes ARNs of typ (the segment before the first "/", e.g.
// "service") resolvable to stored records. Call from an init function.
func RegisterARNType(typ string, r ARNResolver) { arnTypes[typ] = r }

// ResolveARN returns the key of the record an ARN names. registered is false
// for a type nobody registered; ok is false for a malformed id.
func ResolveARN(a ARN) (key string, registered, ok bool) {
	r, registered := arnTypes[a.Type]
	if !registered {
		return "", false, false
	}
	key, ok = r(a)
	return key, true, ok
}

func init() {
	RegisterARNType("cluster", func(a ARN) (string, bool) {
		if len(a.Parts) != 1 || a.Parts[0] == "" {
			return "", false
		}
		return a.Scope.ClusterKey(a.Parts[0]), true
	})
	RegisterARNType("task-definition", func(a ARN) (string, bool) {
		if len(a.Parts) != 1 {
			return "", false
		}
		family, rev, found := strings.Cut(a.Parts[0], ":")
		if !found || family == "" {
			return "", false
		}
		n, err := strconv.ParseInt(rev, 10, 32)
		if err != nil || n < 1 {
			return "", false
		}
		return a.Scope.TaskDefinitionKey(family, int32(n)), true
	})
}
