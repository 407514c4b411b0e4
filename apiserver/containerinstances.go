package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Container instance operations: RegisterContainerInstance,
// DeregisterContainerInstance, DescribeContainerInstances,
// ListContainerInstances, UpdateContainerInstancesState, DiscoverPollEndpoint
// and UpdateContainerAgent.
//
// An instance is registered either by an ecsd agent through the agent channel
// (agentapi.go; the record then carries the hash of the agent's credential) or
// directly by a client through the API, as the ECS agent does. Both end in
// registerInstance. The stored record keeps what was registered and what
// placed tasks hold (Used, written only by the planner); remaining resources,
// task counts and agentConnected are derived on read (containerinstances_view.go).
//
// Deregistering with force leaves the instance's tasks as they are, orphaned
// as ECS documents: their records stay, no longer accounted to a live
// instance, and their containers keep running. The agent of a deregistered
// instance is disconnected; it joins again as a new instance, whose engine
// manages only containers labelled with the new instance's ARN, so the
// orphaned containers run on until stopped by other means.

func (s *Server) registerContainerInstances() {
	s.ops[ecs.OpRegisterContainerInstance] = op(s.registerContainerInstance)
	s.ops[ecs.OpDeregisterContainerInstance] = op(s.deregisterContainerInstance)
	s.ops[ecs.OpDescribeContainerInstances] = op(s.describeContainerInstances)
	s.ops[ecs.OpListContainerInstances] = op(s.listContainerInstances)
	s.ops[ecs.OpUpdateContainerInstancesState] = op(s.updateContainerInstancesState)
	s.ops[ecs.OpDiscoverPollEndpoint] = op(s.discoverPollEndpoint)
	s.ops[ecs.OpUpdateContainerAgent] = op(s.updateContainerAgent)
}

// instanceRegistration is what a new or returning container instance registers.
type instanceRegistration struct {
	ClusterRef  string
	ARN         string // set when an existing instance registers again
	Resources   []ecs.Resource
	Attributes  []ecs.Attribute
	VersionInfo *ecs.VersionInfo
	Tags        []ecs.Tag
	Doc         ciIdentityDocument
	Hostname    string
	// Fargate, External, NodeGroup and NodeID come only from the agent channel
	// (RegisterContainerInstance has no way to ask for them). A Fargate
	// instance joins the scope's managed pool (cluster resource.FargatePool,
	// which has no cluster record) instead of ClusterRef.
	Fargate   bool
	External  bool
	NodeGroup string
	NodeID    string
	// SecretHash is set for agents joining through the agent channel.
	SecretHash string
}

// ciExternalAttribute marks an EXTERNAL (ECS Anywhere-style) instance; the
// EXTERNAL launch type and placement constraints select on it.
const ciExternalAttribute = "ecs.capability.external"

// ---- RegisterContainerInstance

func (s *Server) registerContainerInstance(c *Call, in *ecs.RegisterContainerInstanceRequest) (*ecs.RegisterContainerInstanceResponse, error) {
	doc, err := ciParseIdentityDocument(in.InstanceIdentityDocument)
	if err != nil {
		return nil, err
	}
	rec, rev, err := s.registerInstance(c, instanceRegistration{
		ClusterRef:  in.Cluster,
		ARN:         in.ContainerInstanceArn,
		Resources:   in.TotalResources,
		Attributes:  in.Attributes,
		VersionInfo: in.VersionInfo,
		Tags:        in.Tags,
		Doc:         doc,
	})
	if err != nil {
		return nil, err
	}
	view := s.instanceView(c.Snapshot(), rec, rev, c.Now, ciIncludeTags)
	return &ecs.RegisterContainerInstanceResponse{ContainerInstance: &view}, nil
}

// registerInstance validates r and stores a new ACTIVE container instance, or
// updates the registration of the existing one r.ARN names (an agent coming
// back: its resources, attributes and versions may have changed; its status,
// tags and what its tasks hold are kept).
func (s *Server) registerInstance(c *Call, r instanceRegistration) (*resource.ContainerInstance, int64, error) {
	resources, err := ciNormaliseResources(r.Resources)
	if err != nil {
		return nil, 0, err
	}
	attrs, err := ciValidateAttributes("attributes", r.Attributes)
	if err != nil {
		return nil, 0, err
	}
	if err := validateClusterTags("tags", r.Tags); err != nil {
		return nil, 0, err
	}
	scope := c.Scope()
	if r.Doc.Region != "" && r.Doc.Region != scope.Region {
		return nil, 0, ecs.Errorf(ecs.CodeInvalidParameter, "instanceIdentityDocument: the instance is in region %s, but this request is for region %s.", r.Doc.Region, scope.Region)
	}
	attrs = ciStandardAttributes(attrs, r.Doc, scope.Region)
	if r.External {
		attrs = ciFlagAttribute(attrs, ciExternalAttribute)
	}
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		// The pool has no cluster record to resolve or to guard the write with.
		clusterName := resource.FargatePool
		var guard []store.Op
		if !r.Fargate {
			cluster, clusterRev, err := s.resolveClusterRev(c, r.ClusterRef, true)
			if err != nil {
				return nil, 0, err
			}
			clusterName = cluster.ClusterName
			guard = append(guard, store.Check(scope.ClusterKey(clusterName), clusterRev))
		}
		if r.ARN != "" {
			return s.reregisterInstance(c, clusterName, r, resources, attrs)
		}
		id := strings.ReplaceAll(uuid.NewString(), "-", "")
		ec2ID := r.Doc.InstanceID
		if ec2ID == "" {
			ec2ID = ciNewEC2InstanceID()
		}
		rec := &resource.ContainerInstance{
			ContainerInstance: ecs.ContainerInstance{
				ContainerInstanceArn: scope.ContainerInstanceARN(clusterName, id),
				Ec2InstanceId:        ec2ID,
				Status:               resource.InstanceActive,
				RegisteredAt:         ecs.NewTime(c.Now),
				RegisteredResources:  resources,
				Attributes:           attrs,
				VersionInfo:          r.VersionInfo,
				Tags:                 r.Tags,
				CapacityProviderName: nodeGroupProvider(c.Snapshot(), scope, r.NodeGroup),
			},
			Scope:      scope,
			Cluster:    clusterName,
			ID:         id,
			SecretHash: r.SecretHash,
			Hostname:   r.Hostname,
			Fargate:    r.Fargate,
			External:   r.External,
			NodeGroup:  r.NodeGroup,
			NodeID:     r.NodeID,
		}
		if rec.VersionInfo == nil {
			rec.VersionInfo = &ecs.VersionInfo{}
		}
		key := scope.ContainerInstanceKey(clusterName, id)
		rev, err := c.Commit(append([]store.Op{store.Create(key, resource.Encode(rec))}, guard...)...)
		if errors.Is(err, store.ErrConflict) {
			continue // the cluster changed (or was deleted) since we looked: look again
		}
		if err != nil {
			return nil, 0, err
		}
		s.log.Info("container instance registered", "instance", rec.ContainerInstanceArn, "agent", r.SecretHash != "",
			"fargate", rec.Fargate, "external", rec.External, "node_group", rec.NodeGroup, "capacity_provider", rec.CapacityProviderName)
		return rec, rev, nil
	}
	return nil, 0, ecs.Errorf(ecs.CodeUpdateInProgress, "The cluster is being changed by another request; retry.")
}

func (s *Server) reregisterInstance(c *Call, cluster string, r instanceRegistration, resources []ecs.Resource, attrs []ecs.Attribute) (*resource.ContainerInstance, int64, error) {
	scope := c.Scope()
	id, ok := ciParseRef(scope, cluster, r.ARN)
	if !ok || !strings.HasPrefix(r.ARN, "arn:") {
		return nil, 0, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstanceArn: %q is not a container instance ARN of cluster %s.", r.ARN, cluster)
	}
	key := scope.ContainerInstanceKey(cluster, id)
	rec, err := Mutate(c, key, func(cur *resource.ContainerInstance) (*resource.ContainerInstance, error) {
		if cur == nil {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstanceArn: container instance %s was not found in cluster %s.", r.ARN, cluster)
		}
		if cur.Status == resource.InstanceInactive {
			return nil, ecs.Errorf(ecs.CodeClient, "containerInstanceArn: container instance %s was deregistered; register without containerInstanceArn to join as a new instance.", r.ARN)
		}
		cur.RegisteredResources = resources
		if cur.External {
			attrs = ciFlagAttribute(attrs, ciExternalAttribute)
		}
		cur.Attributes = keepCustomAttributes(attrs, cur.Attributes)
		if cur.NodeGroup != "" && cur.CapacityProviderName == "" {
			// The group's capacity provider may have been created since.
			cur.CapacityProviderName = nodeGroupProvider(c.Snapshot(), scope, cur.NodeGroup)
		}
		if r.VersionInfo != nil {
			cur.VersionInfo = r.VersionInfo
		}
		if r.Tags != nil {
			cur.Tags = r.Tags
		}
		if r.Doc.InstanceID != "" {
			cur.Ec2InstanceId = r.Doc.InstanceID
		}
		if r.SecretHash != "" {
			cur.SecretHash = r.SecretHash
		}
		if r.Hostname != "" {
			cur.Hostname = r.Hostname
		}
		return cur, nil
	})
	if err != nil {
		return nil, 0, err
	}
	_, rev, _ := Get[resource.ContainerInstance](c, key)
	s.log.Info("container instance registered again", "instance", rec.ContainerInstanceArn)
	return rec, rev, nil
}

// ciStandardAttributes adds the attributes ECS sets on every Linux instance
// from what is known of the machine, unless the registration sent its own.
func ciStandardAttributes(attrs []ecs.Attribute, doc ciIdentityDocument, region string) []ecs.Attribute {
	az := doc.AvailabilityZone
	if az == "" {
		az = region + "a"
	}
	itype := doc.InstanceType
	if itype == "" {
		itype = "ecsd.local"
	}
	attrs = ciDefaultAttribute(attrs, "ecs.os-type", "linux")
	attrs = ciDefaultAttribute(attrs, "ecs.os-family", "LINUX")
	attrs = ciDefaultAttribute(attrs, "ecs.cpu-architecture", ciArchitecture(doc.Architecture))
	attrs = ciDefaultAttribute(attrs, "ecs.availability-zone", az)
	attrs = ciDefaultAttribute(attrs, "ecs.instance-type", itype)
	attrs = ciDefaultAttribute(attrs, "ecs.ami-id", doc.ImageID)
	return attrs
}

// ciFlagAttribute adds a value-less attribute (a capability) unless present.
func ciFlagAttribute(attrs []ecs.Attribute, name string) []ecs.Attribute {
	if slices.ContainsFunc(attrs, func(a ecs.Attribute) bool { return a.Name == name }) {
		return attrs
	}
	return append(attrs, ecs.Attribute{Name: name})
}

// nodeGroupProvider is the name of the ACTIVE capacity provider of the scope
// whose Auto Scaling group is the node group ("" for none, or no group).
func nodeGroupProvider(snap *cache.Snapshot, scope resource.Scope, group string) string {
	if group == "" {
		return ""
	}
	name := ""
	snap.Walk(scope.KindPrefix(resource.KindCapacityProvider), func(e *cache.Entry) bool {
		p, ok := e.Obj.(*resource.CapacityProvider)
		if ok && p.NodeGroup == group && p.Status == ecs.CapacityProviderStatusACTIVE {
			name = p.Name
			return false
		}
		return true
	})
	return name
}

// ciNewEC2InstanceID makes an EC2-style instance id (i- and 17 hex digits) for
// instances that did not come with an identity document.
func ciNewEC2InstanceID() string {
	var b [9]byte
	rand.Read(b[:])
	return "i-" + hex.EncodeToString(b[:])[:17]
}

// ---- DeregisterContainerInstance

func (s *Server) deregisterContainerInstance(c *Call, in *ecs.DeregisterContainerInstanceRequest) (*ecs.DeregisterContainerInstanceResponse, error) {
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	id, ok := ciParseRef(scope, cluster.ClusterName, in.ContainerInstance)
	if !ok {
		return nil, ciNotFound(in.ContainerInstance)
	}
	force := in.Force != nil && *in.Force
	key := scope.ContainerInstanceKey(cluster.ClusterName, id)
	rec, err := Mutate(c, key, func(cur *resource.ContainerInstance) (*resource.ContainerInstance, error) {
		if cur == nil || cur.Status == resource.InstanceInactive {
			return nil, ciNotFound(in.ContainerInstance)
		}
		if !force {
			if n := ciActiveTasks(c.Snapshot(), scope, cluster.ClusterName, id); n > 0 {
				return nil, ecs.Errorf(ecs.CodeInvalidParameter, "The container instance has %d tasks that are not stopped; stop them first, or deregister with force to leave them orphaned.", n)
			}
		}
		cur.Status = resource.InstanceInactive
		now := c.Now
		cur.DeregisteredAt = &now
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	_, rev, _ := Get[resource.ContainerInstance](c, key)
	s.log.Info("container instance deregistered", "instance", rec.ContainerInstanceArn, "force", force)
	view := s.instanceView(c.Snapshot(), rec, rev, c.Now, 0)
	return &ecs.DeregisterContainerInstanceResponse{ContainerInstance: &view}, nil
}

func ciNotFound(ref string) error {
	return ecs.Errorf(ecs.CodeInvalidParameter, "containerInstance: container instance %q was not found in the cluster.", ref)
}

// ---- UpdateContainerInstancesState

func (s *Server) updateContainerInstancesState(c *Call, in *ecs.UpdateContainerInstancesStateRequest) (*ecs.UpdateContainerInstancesStateResponse, error) {
	if in.Status != ecs.ContainerInstanceStatusACTIVE && in.Status != ecs.ContainerInstanceStatusDRAINING {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "status: only ACTIVE and DRAINING can be set; got %q.", in.Status)
	}
	if len(in.ContainerInstances) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstances: at least one container instance is required.")
	}
	if len(in.ContainerInstances) > 10 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstances: at most 10 container instances can be updated at once; got %d.", len(in.ContainerInstances))
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	out := &ecs.UpdateContainerInstancesStateResponse{ContainerInstances: []ecs.ContainerInstance{}, Failures: []ecs.Failure{}}
	for _, ref := range in.ContainerInstances {
		id, ok := ciParseRef(scope, cluster.ClusterName, ref)
		if !ok {
			out.Failures = append(out.Failures, ciMissing(scope, cluster.ClusterName, ref))
			continue
		}
		key := scope.ContainerInstanceKey(cluster.ClusterName, id)
		var failure *ecs.Failure
		rec, err := Mutate(c, key, func(cur *resource.ContainerInstance) (*resource.ContainerInstance, error) {
			failure = nil
			switch {
			case cur == nil || cur.Status == resource.InstanceInactive:
				f := ciMissing(scope, cluster.ClusterName, ref)
				failure = &f
				return nil, errCIUnchanged
			case cur.Status != resource.InstanceActive && cur.Status != resource.InstanceDraining:
				// A container instance that never reached ACTIVE cannot be drained.
				failure = &ecs.Failure{Arn: cur.ContainerInstanceArn, Reason: "INVALID_STATUS", Detail: "The container instance is " + cur.Status + "; only ACTIVE or DRAINING instances can change state."}
				return nil, errCIUnchanged
			case cur.Status == string(in.Status):
				return nil, errCIUnchanged
			}
			cur.Status = string(in.Status)
			return cur, nil
		})
		switch {
		case errors.Is(err, errCIUnchanged) && failure != nil:
			out.Failures = append(out.Failures, *failure)
			continue
		case errors.Is(err, errCIUnchanged):
			rec, _, _ = Get[resource.ContainerInstance](c, key)
		case err != nil:
			return nil, err
		default:
			s.log.Info("container instance state changed", "instance", rec.ContainerInstanceArn, "status", rec.Status)
		}
		_, rev, _ := Get[resource.ContainerInstance](c, key)
		out.ContainerInstances = append(out.ContainerInstances, s.instanceView(c.Snapshot(), rec, rev, c.Now, 0))
	}
	return out, nil
}

// errCIUnchanged aborts a Mutate that has nothing to write.
var errCIUnchanged = errors.New("container instance unchanged")

// ---- DiscoverPollEndpoint

// discoverPollEndpoint answers with this server's own address for every
// endpoint: the agent channel, telemetry and Service Connect all live on the
// one listener.
func (s *Server) discoverPollEndpoint(c *Call, in *ecs.DiscoverPollEndpointRequest) (*ecs.DiscoverPollEndpointResponse, error) {
	if in.Cluster != "" {
		if _, err := s.resolveCluster(c, in.Cluster, false); err != nil {
			return nil, err
		}
	}
	url := "http://" + ciLocalAddr(c) + "/"
	return &ecs.DiscoverPollEndpointResponse{Endpoint: url, TelemetryEndpoint: url, ServiceConnectEndpoint: url}, nil
}

// ciLocalAddr is the address the client reached this server on.
func ciLocalAddr(c *Call) string {
	if a, ok := c.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return "127.0.0.1"
}

// ---- UpdateContainerAgent

// updateContainerAgent: ecsd agents are updated by replacing the ecsd binary
// on the machine; the server cannot update them.
func (s *Server) updateContainerAgent(c *Call, in *ecs.UpdateContainerAgentRequest) (*ecs.UpdateContainerAgentResponse, error) {
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	id, ok := ciParseRef(scope, cluster.ClusterName, in.ContainerInstance)
	if !ok {
		return nil, ciNotFound(in.ContainerInstance)
	}
	if rec, ok := Peek[resource.ContainerInstance](c.Snapshot(), scope.ContainerInstanceKey(cluster.ClusterName, id)); !ok || rec.Status == resource.InstanceInactive {
		return nil, ciNotFound(in.ContainerInstance)
	}
	return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "UpdateContainerAgent is not supported by ecsd: the agent is the ecsd binary itself; update it by installing a new ecsd on the machine and restarting `ecsd agent`.")
}

// keepCustomAttributes returns next plus the custom attributes (set with
// PutAttributes) of prev that next does not name: a re-registering agent
// reports its own attributes and must not wipe the operator's.
func keepCustomAttributes(next, prev []ecs.Attribute) []ecs.Attribute {
	named := make(map[string]bool, len(next))
	for _, a := range next {
		named[a.Name] = true
	}
	out := next
	for _, a := range prev {
		if named[a.Name] || strings.HasPrefix(a.Name, "ecs.") || strings.HasPrefix(a.Name, "com.amazonaws.ecs.") {
			continue
		}
		out = append(out, a)
	}
	return out
}
