package apiserver

import (
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Node groups: ecsd's Auto Scaling group analogue, served beside the ECS API
// on the same listener and authentication under their own X-Amz-Target
// prefix (JSON 1.1). The API only records what a group should be; the
// node-group controller (controller/nodegroup) makes its machines match.
//
// Operations are keyed in s.ops by their full target (prefix + "." + name);
// ECS operation names never contain a dot and serveAPI refuses a dotted ECS
// name, so neither API can reach the other's operations.

// NodeGroupsTargetPrefix is the X-Amz-Target prefix of the node group API.
const NodeGroupsTargetPrefix = "EcsdNodeGroups_20261101"

// Node group operation names.
const (
	OpCreateNodeGroup    = "CreateNodeGroup"
	OpDescribeNodeGroups = "DescribeNodeGroups"
	OpUpdateNodeGroup    = "UpdateNodeGroup"
	OpDeleteNodeGroup    = "DeleteNodeGroup"
)

const (
	// maxNodeGroupSize bounds maxSize.
	maxNodeGroupSize = 1000
	// defaultInstanceType is the template of a group created without one.
	defaultInstanceType = "ecsd.medium"
	// maxNodeGroupAttributes bounds a template's custom attributes (ECS allows
	// 10 custom attributes per instance).
	maxNodeGroupAttributes = 10
)

// InstanceType is what one node of an instance type offers.
type InstanceType struct {
	CPU    int   // CPU units (1024 per vCPU)
	Memory int64 // MiB
}

// InstanceTypes are the instance types a node group template may name: ecsd's
// own sizes and a few EC2 names, so templates written for EC2 read naturally.
var InstanceTypes = map[string]InstanceType{
	"ecsd.small":  {1024, 2048},
	"ecsd.medium": {2048, 4096},
	"ecsd.large":  {4096, 8192},
	"ecsd.xlarge": {8192, 16384},
	"t3.micro":    {2048, 1024},
	"t3.small":    {2048, 2048},
	"t3.medium":   {2048, 4096},
	"t3.large":    {2048, 8192},
	"m5.large":    {2048, 8192},
	"m5.xlarge":   {4096, 16384},
	"m5.2xlarge":  {8192, 32768},
	"c5.large":    {2048, 4096},
	"c5.xlarge":   {4096, 8192},
	"r5.large":    {2048, 16384},
}

var (
	nodeGroupNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	zoneNameRE      = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
)

// ---- wire shapes

type CreateNodeGroupRequest struct {
	Name              string            `json:"name"`
	Cluster           string            `json:"cluster,omitempty"`
	MinSize           *int              `json:"minSize,omitempty"`
	MaxSize           *int              `json:"maxSize,omitempty"`
	DesiredCapacity   *int              `json:"desiredCapacity,omitempty"`
	InstanceType      string            `json:"instanceType,omitempty"`
	CPU               *int              `json:"cpu,omitempty"`
	Memory            *int64            `json:"memory,omitempty"`
	AvailabilityZones []string          `json:"availabilityZones,omitempty"`
	Attributes        map[string]string `json:"attributes,omitempty"`
}

type NodeGroupResponse struct {
	NodeGroup *NodeGroupView `json:"nodeGroup"`
}

type DescribeNodeGroupsRequest struct {
	Names []string `json:"names,omitempty"`
}

type DescribeNodeGroupsResponse struct {
	NodeGroups []NodeGroupView `json:"nodeGroups"`
	Failures   []ecs.Failure   `json:"failures"`
}

type UpdateNodeGroupRequest struct {
	Name            string `json:"name"`
	MinSize         *int   `json:"minSize,omitempty"`
	MaxSize         *int   `json:"maxSize,omitempty"`
	DesiredCapacity *int   `json:"desiredCapacity,omitempty"`
}

type DeleteNodeGroupRequest struct {
	Name        string `json:"name"`
	ForceDelete bool   `json:"forceDelete,omitempty"`
}

// NodeGroupView is a group on the wire.
type NodeGroupView struct {
	Name                string            `json:"name"`
	AutoScalingGroupArn string            `json:"autoScalingGroupArn"`
	Cluster             string            `json:"cluster"`
	MinSize             int               `json:"minSize"`
	MaxSize             int               `json:"maxSize"`
	DesiredCapacity     int               `json:"desiredCapacity"`
	InstanceType        string            `json:"instanceType"`
	CPU                 int               `json:"cpu"`
	Memory              int64             `json:"memory"`
	AvailabilityZones   []string          `json:"availabilityZones"`
	Attributes          map[string]string `json:"attributes"`
	Status              string            `json:"status"`
	CreatedAt           *ecs.Time         `json:"createdAt,omitempty"`
	Nodes               []NodeView        `json:"nodes"`
}

// NodeView is one node of a group on the wire.
type NodeView struct {
	ID                   string    `json:"id"`
	State                string    `json:"state"`
	AvailabilityZone     string    `json:"availabilityZone,omitempty"`
	ContainerInstanceArn string    `json:"containerInstanceArn,omitempty"`
	ProtectedFromScaleIn bool      `json:"protectedFromScaleIn"`
	LaunchedAt           *ecs.Time `json:"launchedAt,omitempty"`
	LastError            string    `json:"lastError,omitempty"`
}

// nodeGroupStatusActive is how an active group ("" in the record) reads.
const nodeGroupStatusActive = "ACTIVE"

func nodeGroupView(g *resource.NodeGroup) *NodeGroupView {
	v := &NodeGroupView{
		Name: g.Name, AutoScalingGroupArn: g.ARN, Cluster: g.Scope.ClusterARN(g.Cluster),
		MinSize: g.Min, MaxSize: g.Max, DesiredCapacity: g.Desired,
		InstanceType: g.Template.InstanceType, CPU: g.Template.CPU, Memory: g.Template.Memory,
		AvailabilityZones: append([]string{}, g.Template.AvailabilityZones...),
		Attributes:        map[string]string{},
		Status:            g.Status,
		CreatedAt:         ecs.NewTime(g.CreatedAt),
		Nodes:             []NodeView{},
	}
	if v.Status == "" {
		v.Status = nodeGroupStatusActive
	}
	for k, val := range g.Template.Attributes {
		v.Attributes[k] = val
	}
	for _, n := range g.Nodes {
		nv := NodeView{ID: n.ID, State: n.State, AvailabilityZone: n.AvailabilityZone,
			ContainerInstanceArn: n.ContainerInstanceArn, ProtectedFromScaleIn: n.ProtectedFromScaleIn, LastError: n.LastError}
		if !n.LaunchedAt.IsZero() {
			nv.LaunchedAt = ecs.NewTime(n.LaunchedAt)
		}
		v.Nodes = append(v.Nodes, nv)
	}
	return v
}

func (s *Server) registerNodeGroups() {
	s.ops[NodeGroupsTargetPrefix+"."+OpCreateNodeGroup] = op(s.createNodeGroup)
	s.ops[NodeGroupsTargetPrefix+"."+OpDescribeNodeGroups] = op(s.describeNodeGroups)
	s.ops[NodeGroupsTargetPrefix+"."+OpUpdateNodeGroup] = op(s.updateNodeGroup)
	s.ops[NodeGroupsTargetPrefix+"."+OpDeleteNodeGroup] = op(s.deleteNodeGroup)
}

// splitTarget resolves an X-Amz-Target to the operation's key in s.ops and
// its name; ok is false for a target of neither API.
func splitTarget(target string) (key, name string, ok bool) {
	if name, ok := strings.CutPrefix(target, ecs.TargetPrefix+"."); ok {
		return name, name, !strings.Contains(name, ".")
	}
	if name, ok := strings.CutPrefix(target, NodeGroupsTargetPrefix+"."); ok && name != "" && !strings.Contains(name, ".") {
		return target, name, true
	}
	return "", "", false
}

func errNodeGroupNotFound(name string) error {
	return ecs.Errorf(ecs.CodeResourceNotFound, "name: node group %q does not exist.", name)
}

func validateNodeGroupName(name string) error {
	if !nodeGroupNameRE.MatchString(name) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "name: %q is not a valid node group name; names have 1 to 255 letters, numbers, hyphens and underscores.", name)
	}
	return nil
}

// nodeGroupName turns a name or node group ARN of the caller's scope into a name.
func nodeGroupName(c *Call, ref string) (string, error) {
	if strings.HasPrefix(ref, "arn:") {
		scope, name, err := resource.ParseNodeGroupARN(ref)
		if err != nil {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "name: %v.", err)
		}
		if scope != c.Scope() {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "name: %q is in %s; the request is for %s.", ref, scope, c.Scope())
		}
		ref = name
	}
	return ref, validateNodeGroupName(ref)
}

// validateSizes checks 0 <= min <= desired <= max <= 1000.
func validateSizes(lo, desired, hi int) error {
	switch {
	case lo < 0:
		return ecs.Errorf(ecs.CodeInvalidParameter, "minSize: must be at least 0; got %d.", lo)
	case hi > maxNodeGroupSize:
		return ecs.Errorf(ecs.CodeInvalidParameter, "maxSize: must be at most %d; got %d.", maxNodeGroupSize, hi)
	case lo > hi:
		return ecs.Errorf(ecs.CodeInvalidParameter, "minSize: %d is greater than maxSize %d.", lo, hi)
	case desired < lo:
		return ecs.Errorf(ecs.CodeInvalidParameter, "desiredCapacity: %d is less than minSize %d.", desired, lo)
	case desired > hi:
		return ecs.Errorf(ecs.CodeInvalidParameter, "desiredCapacity: %d is greater than maxSize %d.", desired, hi)
	}
	return nil
}

// ---- CreateNodeGroup

func (s *Server) createNodeGroup(c *Call, in *CreateNodeGroupRequest) (*NodeGroupResponse, error) {
	if in.Name == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: a node group name is required.")
	}
	if err := validateNodeGroupName(in.Name); err != nil {
		return nil, err
	}
	if in.MinSize == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "minSize: required.")
	}
	if in.MaxSize == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxSize: required.")
	}
	desired := *in.MinSize
	if in.DesiredCapacity != nil {
		desired = *in.DesiredCapacity
	}
	if err := validateSizes(*in.MinSize, desired, *in.MaxSize); err != nil {
		return nil, err
	}
	tmpl, err := nodeTemplate(c, in)
	if err != nil {
		return nil, err
	}
	cluster, clusterRev, err := s.resolveClusterRev(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	key := scope.NodeGroupKey(in.Name)
	if existing, ok := Peek[resource.NodeGroup](c.Snapshot(), key); ok {
		if existing.Status == resource.NodeGroupDeleting {
			return nil, ecs.Errorf(ecs.CodeResourceInUse, "name: node group %q is being deleted; create it again once it is gone.", in.Name)
		}
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: node group %q already exists.", in.Name)
	}
	id := uuid.NewString()
	g := &resource.NodeGroup{
		Scope: scope, Name: in.Name, ID: id, ARN: scope.NodeGroupARN(id, in.Name),
		Cluster: cluster.ClusterName, Min: *in.MinSize, Max: *in.MaxSize, Desired: desired,
		Template: tmpl, NextNode: 1, CreatedAt: c.Now,
	}
	now := c.Now
	g.LastScalingAt = &now
	_, err = c.Commit(store.Create(key, resource.Encode(g)), store.Check(scope.ClusterKey(cluster.ClusterName), clusterRev))
	if errors.Is(err, store.ErrConflict) {
		if _, ok := Peek[resource.NodeGroup](c.Snapshot(), key); ok {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "name: node group %q already exists.", in.Name)
		}
		return nil, ecs.Errorf(ecs.CodeClusterNotFound, "cluster: the cluster changed or was deleted while the node group was being created; retry.")
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("node group created", "group", g.Name, "cluster", g.Cluster, "min", g.Min, "max", g.Max, "desired", g.Desired, "instance_type", tmpl.InstanceType)
	return &NodeGroupResponse{NodeGroup: nodeGroupView(g)}, nil
}

// nodeTemplate validates and completes a create request's template.
func nodeTemplate(c *Call, in *CreateNodeGroupRequest) (resource.NodeTemplate, error) {
	t := resource.NodeTemplate{InstanceType: in.InstanceType}
	if t.InstanceType == "" {
		t.InstanceType = defaultInstanceType
	}
	it, ok := InstanceTypes[t.InstanceType]
	if !ok {
		known := make([]string, 0, len(InstanceTypes))
		for k := range InstanceTypes {
			known = append(known, k)
		}
		sort.Strings(known)
		return t, ecs.Errorf(ecs.CodeInvalidParameter, "instanceType: unknown instance type %q; known types: %s.", in.InstanceType, strings.Join(known, ", "))
	}
	t.CPU, t.Memory = it.CPU, it.Memory
	if in.CPU != nil {
		if *in.CPU < 128 || *in.CPU > 1<<20 {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "cpu: must be between 128 and %d CPU units; got %d.", 1<<20, *in.CPU)
		}
		t.CPU = *in.CPU
	}
	if in.Memory != nil {
		if *in.Memory < 128 || *in.Memory > 1<<24 {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "memory: must be between 128 and %d MiB; got %d.", 1<<24, *in.Memory)
		}
		t.Memory = *in.Memory
	}
	zones := in.AvailabilityZones
	if len(zones) == 0 {
		zones = []string{c.Scope().Region + "a"}
	}
	seen := map[string]bool{}
	for _, z := range zones {
		if !zoneNameRE.MatchString(z) {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "availabilityZones: %q is not a valid availability zone name.", z)
		}
		if seen[z] {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "availabilityZones: %q is listed twice.", z)
		}
		seen[z] = true
		t.AvailabilityZones = append(t.AvailabilityZones, z)
	}
	if len(in.Attributes) > maxNodeGroupAttributes {
		return t, ecs.Errorf(ecs.CodeInvalidParameter, "attributes: at most %d custom attributes; got %d.", maxNodeGroupAttributes, len(in.Attributes))
	}
	for k, v := range in.Attributes {
		if !attrNameRE.MatchString(k) || strings.HasPrefix(k, "ecs.") {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "attributes: %q is not a valid custom attribute name (up to 128 letters, numbers, hyphens, underscores, slashes, back slashes or periods; not starting with ecs.).", k)
		}
		if !attrValueRE.MatchString(v) {
			return t, ecs.Errorf(ecs.CodeInvalidParameter, "attributes: the value of %q is not valid (1 to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, back slashes, colons or spaces; no commas or equals signs).", k)
		}
		if t.Attributes == nil {
			t.Attributes = map[string]string{}
		}
		t.Attributes[k] = v
	}
	return t, nil
}

// Custom attribute names and values as ECS allows them (no ',' or '=', which
// the agent's --attributes flag uses as separators).
var (
	attrNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_./\\-]{1,128}$`)
	attrValueRE = regexp.MustCompile(`^[a-zA-Z0-9_.@/\\: -]{1,128}$`)
)

// ---- DescribeNodeGroups

func (s *Server) describeNodeGroups(c *Call, in *DescribeNodeGroupsRequest) (*DescribeNodeGroupsResponse, error) {
	scope := c.Scope()
	snap := c.Snapshot()
	out := &DescribeNodeGroupsResponse{NodeGroups: []NodeGroupView{}, Failures: []ecs.Failure{}}
	if len(in.Names) > 100 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "names: at most 100 names; got %d.", len(in.Names))
	}
	if len(in.Names) == 0 {
		for _, g := range listNodeGroups(c) {
			out.NodeGroups = append(out.NodeGroups, *nodeGroupView(g))
		}
		return out, nil
	}
	for _, ref := range in.Names {
		name, err := nodeGroupName(c, ref)
		if err != nil {
			return nil, err
		}
		g, ok := Peek[resource.NodeGroup](snap, scope.NodeGroupKey(name))
		if !ok {
			out.Failures = append(out.Failures, ecs.Failure{Arn: ref, Reason: "MISSING", Detail: "node group " + name + " does not exist"})
			continue
		}
		out.NodeGroups = append(out.NodeGroups, *nodeGroupView(g))
	}
	return out, nil
}

// listNodeGroups is every group of the caller's scope, by name.
func listNodeGroups(c *Call) []*resource.NodeGroup {
	var out []*resource.NodeGroup
	c.Snapshot().Walk(c.Scope().KindPrefix(resource.KindNodeGroup), func(e *cache.Entry) bool {
		if g, ok := e.Obj.(*resource.NodeGroup); ok {
			out = append(out, g)
		}
		return true
	})
	return out
}

// ---- UpdateNodeGroup

func (s *Server) updateNodeGroup(c *Call, in *UpdateNodeGroupRequest) (*NodeGroupResponse, error) {
	name, err := nodeGroupName(c, in.Name)
	if err != nil {
		return nil, err
	}
	if in.MinSize == nil && in.MaxSize == nil && in.DesiredCapacity == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "minSize, maxSize or desiredCapacity: give at least one.")
	}
	g, err := Mutate(c, c.Scope().NodeGroupKey(name), func(cur *resource.NodeGroup) (*resource.NodeGroup, error) {
		if cur == nil {
			return nil, errNodeGroupNotFound(name)
		}
		if cur.Status == resource.NodeGroupDeleting {
			return nil, ecs.Errorf(ecs.CodeResourceInUse, "name: node group %q is being deleted.", name)
		}
		lo, desired, hi := cur.Min, cur.Desired, cur.Max
		if in.MinSize != nil {
			lo = *in.MinSize
		}
		if in.MaxSize != nil {
			hi = *in.MaxSize
		}
		if in.DesiredCapacity != nil {
			desired = *in.DesiredCapacity
		}
		if err := validateSizes(lo, desired, hi); err != nil {
			return nil, err
		}
		if desired != cur.Desired {
			now := c.Now
			cur.LastScalingAt = &now
		}
		cur.Min, cur.Desired, cur.Max = lo, desired, hi
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("node group updated", "group", g.Name, "min", g.Min, "max", g.Max, "desired", g.Desired)
	return &NodeGroupResponse{NodeGroup: nodeGroupView(g)}, nil
}

// ---- DeleteNodeGroup

func (s *Server) deleteNodeGroup(c *Call, in *DeleteNodeGroupRequest) (*NodeGroupResponse, error) {
	name, err := nodeGroupName(c, in.Name)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	g, err := Mutate(c, scope.NodeGroupKey(name), func(cur *resource.NodeGroup) (*resource.NodeGroup, error) {
		if cur == nil {
			return nil, errNodeGroupNotFound(name)
		}
		if p := nodeGroupInUseBy(c, name); p != "" {
			return nil, ecs.Errorf(ecs.CodeResourceInUse, "name: node group %q is used by capacity provider %q; delete the capacity provider first.", name, p)
		}
		if cur.Status != resource.NodeGroupDeleting {
			now := c.Now
			cur.LastScalingAt = &now
		}
		cur.Status = resource.NodeGroupDeleting
		cur.Min, cur.Desired = 0, 0
		cur.ForceDelete = cur.ForceDelete || in.ForceDelete
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("node group deleting", "group", g.Name, "force", g.ForceDelete, "nodes", len(g.Nodes))
	return &NodeGroupResponse{NodeGroup: nodeGroupView(g)}, nil
}

// nodeGroupInUseBy is the name of a capacity provider not yet INACTIVE that
// is backed by the group ("" if none).
func nodeGroupInUseBy(c *Call, group string) string {
	found := ""
	c.Snapshot().Walk(c.Scope().KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
		if p, ok := e.Obj.(*resource.CapacityProvider); ok && p.NodeGroup == group && p.Status != "INACTIVE" {
			found = p.Name
			return false
		}
		return true
	})
	return found
}
