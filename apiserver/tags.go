package apiserver

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Tags on any taggable ECS resource. The handlers know nothing of the resource
// kinds: an ARN resolves to a stored key through resource.RegisterARNType, and
// the record there implements resource.Taggable.

// maxUserTags is ECS's per-resource limit; tags with the reserved aws: prefix
// do not count against it.
const maxUserTags = 50

// clusterScopedARNTypes are the ECS resource types whose ARN starts with the
// cluster name (long format), so a missing parent cluster can be reported as such.
var clusterScopedARNTypes = map[string]bool{
	"service": true, "task": true, "container-instance": true, "task-set": true,
}

// taggableARNTypes are the ECS resource types TagResource accepts. Types not yet
// registered in resource.RegisterARNType have nothing stored, so they are not
// found rather than invalid.
var taggableARNTypes = map[string]bool{
	"cluster": true, "task-definition": true, "service": true, "task": true,
	"container-instance": true, "capacity-provider": true, "task-set": true,
}

func (s *Server) registerTags() {
	s.ops[ecs.OpTagResource] = op(s.tagResource)
	s.ops[ecs.OpUntagResource] = op(s.untagResource)
	s.ops[ecs.OpListTagsForResource] = op(s.listTagsForResource)
}

func (s *Server) tagResource(c *Call, in *ecs.TagResourceRequest) (*ecs.TagResourceResponse, error) {
	a, key, err := s.taggedResource(c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(in.Tags))
	for i, t := range in.Tags {
		path := fmt.Sprintf("tags[%d].key", i)
		if err := checkTagKey(path, t.Key); err != nil {
			return nil, err
		}
		// Keys are unique per resource; a request naming one twice is ambiguous.
		if seen[t.Key] {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s: duplicate tag key %q.", path, t.Key)
		}
		seen[t.Key] = true
	}
	err = mutateTags(c, a, key, func(cur []ecs.Tag) ([]ecs.Tag, error) {
		next := mergeTags(cur, in.Tags)
		if n := countUserTags(next); n > maxUserTags {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "tags: a resource can have at most %d tags; %s would have %d.", maxUserTags, in.ResourceArn, n)
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.TagResourceResponse{}, nil
}

func (s *Server) untagResource(c *Call, in *ecs.UntagResourceRequest) (*ecs.UntagResourceResponse, error) {
	a, key, err := s.taggedResource(c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	for i, k := range in.TagKeys {
		if err := checkTagKey(fmt.Sprintf("tagKeys[%d]", i), k); err != nil {
			return nil, err
		}
	}
	err = mutateTags(c, a, key, func(cur []ecs.Tag) ([]ecs.Tag, error) {
		return slices.DeleteFunc(slices.Clone(cur), func(t ecs.Tag) bool {
			return slices.Contains(in.TagKeys, t.Key)
		}), nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UntagResourceResponse{}, nil
}

func (s *Server) listTagsForResource(c *Call, in *ecs.ListTagsForResourceRequest) (*ecs.ListTagsForResourceResponse, error) {
	a, key, err := s.taggedResource(c, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	e, ok := c.Snapshot().Get(key)
	if !ok {
		return nil, tagTargetNotFound(c, a)
	}
	t, ok := e.Obj.(resource.Taggable)
	if !ok {
		return nil, fmt.Errorf("tags: record at %s (%T) is not taggable", key, e.Obj)
	}
	// Reads of an INACTIVE cluster still answer: ECS keeps deleted clusters
	// describable, tags included, until they are collected.
	tags := slices.Clone(t.GetTags())
	if tags == nil {
		tags = []ecs.Tag{}
	}
	return &ecs.ListTagsForResourceResponse{Tags: tags}, nil
}

// taggedResource parses resourceArn and resolves it to the key of the record
// that carries its tags. Unknown records are reported by the callers, which
// read the snapshot.
func (s *Server) taggedResource(c *Call, arn string) (resource.ARN, string, error) {
	a, err := resource.ParseARN(arn)
	if err != nil {
		return a, "", ecs.Errorf(ecs.CodeInvalidParameter, "resourceArn: %q is not a valid ECS resource ARN.", arn)
	}
	if !taggableARNTypes[a.Type] {
		if _, registered, _ := resource.ResolveARN(a); !registered {
			return a, "", ecs.Errorf(ecs.CodeInvalidParameter, "resourceArn: ECS resources of type %q cannot be tagged.", a.Type)
		}
	}
	if a.Scope != c.Scope() {
		return a, "", ecs.Errorf(ecs.CodeInvalidParameter, "resourceArn: %s is in account %s, region %s; this request acts in account %s, region %s.",
			arn, a.Scope.Account, a.Scope.Region, c.Scope().Account, c.Scope().Region)
	}
	key, registered, ok := resource.ResolveARN(a)
	if !registered {
		// A kind ecsd does not store yet: nothing of it can exist.
		return a, "", tagTargetNotFound(c, a)
	}
	if !ok {
		return a, "", ecs.Errorf(ecs.CodeInvalidParameter, "resourceArn: %q is not a valid %s ARN.", arn, a.Type)
	}
	return a, key, nil
}

// tagTargetNotFound is ECS's error for a well-formed ARN that names nothing: a
// cluster (or a resource inside a missing cluster) is ClusterNotFoundException,
// anything else ResourceNotFoundException.
func tagTargetNotFound(c *Call, a resource.ARN) error {
	if a.Type == "cluster" {
		return ecs.Errorf(ecs.CodeClusterNotFound, "Cluster not found: %s.", a.Parts[0])
	}
	if clusterScopedARNTypes[a.Type] && len(a.Parts) >= 2 {
		if _, ok := c.Snapshot().Get(a.Scope.ClusterKey(a.Parts[0])); !ok {
			return ecs.Errorf(ecs.CodeClusterNotFound, "Cluster not found: %s.", a.Parts[0])
		}
	}
	return ecs.Errorf(ecs.CodeResourceNotFound, "The specified resource could not be found: %s/%s.", a.Type, a.Resource)
}

// mutateTags is Mutate for tags on a record of any registered kind: read the
// record, let fn compute the next tag list, write it back under a revision
// condition, and retry with fresh state on conflict. The record is copied by a
// decode round trip, so cache objects are never touched.
func mutateTags(c *Call, a resource.ARN, key string, fn func(cur []ecs.Tag) ([]ecs.Tag, error)) error {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, ok := c.Snapshot().Get(key)
		if !ok {
			return tagTargetNotFound(c, a)
		}
		obj, err := resource.Decode(key, resource.Encode(e.Obj))
		if err != nil {
			return fmt.Errorf("tags: copy %s: %w", key, err)
		}
		t, ok := obj.(resource.Taggable)
		if !ok {
			return fmt.Errorf("tags: record at %s (%T) is not taggable", key, obj)
		}
		if g, ok := obj.(resource.TagGuard); ok {
			if err := g.TagWriteError(); err != nil {
				return err
			}
		}
		cur := t.GetTags()
		next, err := fn(slices.Clone(cur))
		if err != nil {
			return err
		}
		if slices.Equal(cur, next) {
			return nil
		}
		if len(next) == 0 {
			next = nil
		}
		t.SetTags(next)
		if _, err := c.Commit(store.Update(key, resource.Encode(obj), e.Rev)); err != nil {
			if errors.Is(err, store.ErrConflict) {
				if err := c.afterConflict(key, attempt); err != nil {
					return err
				}
				continue
			}
			return err
		}
		return nil
	}
	return ecs.Errorf(ecs.CodeUpdateInProgress, "The tags of %s/%s are being changed by another request; retry.", a.Type, a.Resource)
}

// checkTagKey applies ECS's rules the model cannot express: a key is required,
// and the aws: prefix (in any case) is reserved for AWS, so it can be neither
// added nor removed by a client.
func checkTagKey(path, key string) error {
	if key == "" {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s must have a length of at least 1.", path)
	}
	if isReservedTagKey(key) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s: %q uses the aws: prefix, which is reserved for AWS use.", path, key)
	}
	return nil
}

func isReservedTagKey(key string) bool {
	return len(key) >= 4 && strings.EqualFold(key[:4], "aws:")
}

// mergeTags overwrites the values of existing keys in place and appends new keys
// in request order.
func mergeTags(cur, add []ecs.Tag) []ecs.Tag {
	out := slices.Clone(cur)
	for _, t := range add {
		if i := slices.IndexFunc(out, func(o ecs.Tag) bool { return o.Key == t.Key }); i >= 0 {
			out[i].Value = t.Value
			continue
		}
		out = append(out, t)
	}
	return out
}

func countUserTags(tags []ecs.Tag) int {
	n := 0
	for _, t := range tags {
		if !isReservedTagKey(t.Key) {
			n++
		}
	}
	return n
}
