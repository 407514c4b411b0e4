package apiserver

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Attribute operations: PutAttributes, ListAttributes, DeleteAttributes.
//
// Attributes live on the container instance record (its Attributes list), so
// the scheduler sees a custom attribute in memberOf and spread as soon as the
// write is in the cache. A call may name several instances; it is written in
// one transaction that compare-and-swaps each instance on the revision it was
// read at, so it never overwrites the planner's resource accounting (Used) and
// a call that fails for one target changes none.
//
// Decisions where ECS's documentation is silent:
//   - Names ECS and its agent own (ecs.*, com.amazonaws.ecs.*) cannot be put
//     or deleted: the scheduler and the agent rely on them (availability zone,
//     capabilities). They are set when an instance registers.
//   - Deleting an attribute the instance does not carry is not an error; the
//     value of an attribute to delete is ignored (deletion is by name).
//   - The response echoes the attributes as the caller sent them.
//   - Deregistered (INACTIVE) instances are not targets and are not listed.

const (
	attrMaxPerCall   = 10
	attrMaxList      = 100
	attrListTokenTag = "ecsd.attributes.v1:"
)

func (s *Server) registerAttributes() {
	s.ops[ecs.OpPutAttributes] = op(s.putAttributes)
	s.ops[ecs.OpListAttributes] = op(s.listAttributes)
	s.ops[ecs.OpDeleteAttributes] = op(s.deleteAttributes)
}

// ---- PutAttributes, DeleteAttributes

func (s *Server) putAttributes(c *Call, in *ecs.PutAttributesRequest) (*ecs.PutAttributesResponse, error) {
	if err := s.changeAttributes(c, in.Cluster, in.Attributes, false); err != nil {
		return nil, err
	}
	return &ecs.PutAttributesResponse{Attributes: in.Attributes}, nil
}

func (s *Server) deleteAttributes(c *Call, in *ecs.DeleteAttributesRequest) (*ecs.DeleteAttributesResponse, error) {
	if err := s.changeAttributes(c, in.Cluster, in.Attributes, true); err != nil {
		return nil, err
	}
	return &ecs.DeleteAttributesResponse{Attributes: in.Attributes}, nil
}

// attrChange is one attribute to set (or delete) on one instance.
type attrChange struct {
	name, value string
	path        string // attributes[i], for messages
}

// attrTarget is one instance a call changes, with its changes in call order.
type attrTarget struct {
	id      string
	ref     string // as the caller named it first, for messages
	changes []attrChange
}

// changeAttributes validates a Put/DeleteAttributes call and writes it.
func (s *Server) changeAttributes(c *Call, clusterRef string, attrs []ecs.Attribute, del bool) error {
	scope := c.Scope()
	cluster, err := s.resolveCluster(c, clusterRef, false)
	if err != nil {
		return err
	}
	targets, err := attrTargets(scope, cluster.ClusterName, attrs, del)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		snap := c.Snapshot()
		ops, err := attrOps(snap, scope, cluster.ClusterName, targets, del)
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			return nil // nothing changes: no write, no revision for the planner to trip on
		}
		_, err = c.Commit(ops...)
		if errors.Is(err, store.ErrConflict) {
			// An instance changed since we read it (the planner charging it, a
			// state change): let the cache move past what we read, then retry.
			s.attrCatchUp(c, snap.Rev(), attempt)
			continue
		}
		return err
	}
	return ecs.Errorf(ecs.CodeUpdateInProgress, "The container instances are being changed by other requests; retry.")
}

// attrCatchUp waits briefly until the cache is past rev, so a retry after a
// conflict reads the write that caused it instead of failing on it again, then
// a random moment more (growing with attempt) so a retry does not race a busy
// writer of the same instance in lockstep.
func (s *Server) attrCatchUp(c *Call, rev int64, attempt int) {
	ctx, cancel := context.WithTimeout(c.ctx, 200*time.Millisecond)
	defer cancel()
	_ = s.cache.WaitFor(ctx, rev+1) // a timeout only means nothing new arrived: retry anyway
	jitter := time.Duration(rand.Int64N(int64(attempt+1) * int64(time.Millisecond)))
	select {
	case <-time.After(jitter):
	case <-c.ctx.Done():
	}
}

// attrTargets checks every attribute of the call and groups them by instance.
func attrTargets(scope resource.Scope, cluster string, attrs []ecs.Attribute, del bool) ([]*attrTarget, error) {
	if len(attrs) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attributes: at least one attribute is required.")
	}
	if len(attrs) > attrMaxPerCall {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attributes: at most %d attributes can be given in one call; got %d.", attrMaxPerCall, len(attrs))
	}
	var targets []*attrTarget
	byID := map[string]*attrTarget{}
	for i, a := range attrs {
		p := "attributes[" + strconv.Itoa(i) + "]"
		if !ciAttrNameRE.MatchString(a.Name) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name: %q is not valid: 1-128 letters, numbers, hyphens, underscores, periods and forward or back slashes.", p, a.Name)
		}
		if ciIsECSAttribute(a.Name) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.name: %q is an attribute Amazon ECS sets; only custom attributes can be changed.", p, a.Name)
		}
		if !del && a.Value != "" && (!ciAttrValueRE.MatchString(a.Value) || strings.HasPrefix(a.Value, " ") || strings.HasSuffix(a.Value, " ")) {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.value: %q is not valid: 1-128 letters, numbers, spaces, hyphens, underscores, periods, at signs, colons and forward or back slashes, not starting or ending with a space.", p, a.Value)
		}
		if a.TargetType != "" && a.TargetType != ecs.TargetTypeContainerInstance {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%s.targetType: %q is not valid; the only target type is container-instance.", p, a.TargetType)
		}
		id, err := attrTargetID(scope, cluster, p, a)
		if err != nil {
			return nil, err
		}
		t := byID[id]
		if t == nil {
			t = &attrTarget{id: id, ref: a.TargetId}
			byID[id] = t
			targets = append(targets, t)
		}
		t.changes = append(t.changes, attrChange{name: a.Name, value: a.Value, path: p})
	}
	return targets, nil
}

// attrTargetID resolves an attribute's targetId: a container instance ID
// (targetType then required) or a container instance ARN of the cluster.
func attrTargetID(scope resource.Scope, cluster, p string, a ecs.Attribute) (string, error) {
	if a.TargetId == "" {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "%s.targetId is required: a container instance ID or ARN.", p)
	}
	if !strings.HasPrefix(a.TargetId, "arn:") && a.TargetType == "" {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "%s.targetType is required when targetId %q is an ID rather than an ARN; use container-instance.", p, a.TargetId)
	}
	if id, ok := ciParseRef(scope, cluster, a.TargetId); ok {
		return id, nil
	}
	// A well-formed container instance ARN of this account and region that
	// names another cluster is a target that is not in this one.
	if arn, err := resource.ParseARN(a.TargetId); err == nil && arn.Type == "container-instance" && arn.Scope == scope && len(arn.Parts) == 2 {
		return "", errAttrTargetNotFound(a.TargetId, cluster)
	}
	return "", ecs.Errorf(ecs.CodeInvalidParameter, "%s.targetId: %q is not a container instance ID or ARN of account %s in region %s.", p, a.TargetId, scope.Account, scope.Region)
}

func errAttrTargetNotFound(ref, cluster string) error {
	return ecs.Errorf(ecs.CodeTargetNotFound, "Could not find container instance %s in cluster %s.", ref, cluster)
}

// attrOps computes the CAS updates for targets against snap; instances whose
// attributes would not change are not written.
func attrOps(snap *cache.Snapshot, scope resource.Scope, cluster string, targets []*attrTarget, del bool) ([]store.Op, error) {
	var ops []store.Op
	for _, t := range targets {
		key := scope.ContainerInstanceKey(cluster, t.id)
		e, ok := snap.Get(key)
		if !ok {
			return nil, errAttrTargetNotFound(t.ref, cluster)
		}
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Status == resource.InstanceInactive {
			return nil, errAttrTargetNotFound(t.ref, cluster)
		}
		next := slices.Clone(ci.Attributes)
		for _, ch := range t.changes {
			if del {
				next = slices.DeleteFunc(next, func(a ecs.Attribute) bool { return a.Name == ch.name })
			} else {
				next = ciSetAttribute(next, ch.name, ch.value)
			}
		}
		if !del {
			if n := attrCustomCount(next); n > ciMaxCustomAttributes {
				return nil, ecs.Errorf(ecs.CodeAttributeLimitExceeded, "attributes: container instance %s would carry %d custom attributes; at most %d are allowed (delete some with DeleteAttributes).", t.ref, n, ciMaxCustomAttributes)
			}
		}
		if slices.Equal(next, ci.Attributes) {
			continue
		}
		// A shallow copy that replaces only Attributes: the record is encoded,
		// never mutated, and the CAS on e.Rev guarantees Used is the latest.
		cp := *ci
		cp.Attributes = next
		ops = append(ops, store.Update(key, resource.Encode(&cp), e.Rev))
	}
	return ops, nil
}

func attrCustomCount(attrs []ecs.Attribute) int {
	n := 0
	for _, a := range attrs {
		if !ciIsECSAttribute(a.Name) {
			n++
		}
	}
	return n
}

// ---- ListAttributes

func (s *Server) listAttributes(c *Call, in *ecs.ListAttributesRequest) (*ecs.ListAttributesResponse, error) {
	if in.TargetType != ecs.TargetTypeContainerInstance {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "targetType: %q is not valid; the only target type is container-instance.", in.TargetType)
	}
	if in.AttributeValue != "" && in.AttributeName == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attributeValue: filtering by value requires attributeName.")
	}
	if in.AttributeName != "" && !ciAttrNameRE.MatchString(in.AttributeName) {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "attributeName: %q is not a valid attribute name.", in.AttributeName)
	}
	limit := attrMaxList
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > attrMaxList {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", attrMaxList, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	scope := c.Scope()
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	prefix := scope.KindPrefix(resource.KindContainerInstance, cluster.ClusterName)
	from, afterID, afterName := prefix, "", ""
	if in.NextToken != "" {
		if afterID, afterName, err = decodeAttrListToken(in.NextToken); err != nil {
			return nil, err
		}
		from = scope.ContainerInstanceKey(cluster.ClusterName, afterID)
	}
	out := &ecs.ListAttributesResponse{Attributes: []ecs.Attribute{}}
	lastID, lastName := "", ""
	c.Snapshot().WalkFrom(prefix, from, func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Status == resource.InstanceInactive {
			return true
		}
		// Within an instance attributes are listed by name, so a page boundary
		// inside an instance is a stable (id, name) cursor.
		attrs := slices.Clone(ci.Attributes)
		slices.SortFunc(attrs, func(a, b ecs.Attribute) int { return strings.Compare(a.Name, b.Name) })
		for _, a := range attrs {
			if ci.ID == afterID && a.Name <= afterName {
				continue
			}
			if in.AttributeName != "" && a.Name != in.AttributeName {
				continue
			}
			if in.AttributeValue != "" && a.Value != in.AttributeValue {
				continue
			}
			if len(out.Attributes) == limit {
				out.NextToken = encodeAttrListToken(lastID, lastName)
				return false
			}
			out.Attributes = append(out.Attributes, ecs.Attribute{
				Name: a.Name, Value: a.Value,
				TargetType: ecs.TargetTypeContainerInstance, TargetId: ci.ContainerInstanceArn,
			})
			lastID, lastName = ci.ID, a.Name
		}
		return true
	})
	return out, nil
}

// The list token is opaque to clients: a versioned, encoded (instance ID,
// attribute name) to resume after, in key then name order.
func encodeAttrListToken(id, name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(attrListTokenTag + id + "/" + name))
}

func decodeAttrListToken(tok string) (id, name string, err error) {
	b, derr := base64.RawURLEncoding.DecodeString(tok)
	rest, ok := strings.CutPrefix(string(b), attrListTokenTag)
	if ok {
		id, name, ok = strings.Cut(rest, "/")
	}
	if derr != nil || !ok || id == "" || name == "" {
		return "", "", ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken of a previous ListAttributes response.")
	}
	return id, name, nil
}
