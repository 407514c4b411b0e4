package apiserver

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler/cql"
)

// Reading container instances: the wire view (with what is derived on read),
// DescribeContainerInstances and ListContainerInstances.

const (
	maxDescribeContainerInstances = 100
	maxListContainerInstances     = 100
)

// ciInclude selects the optional parts of the wire view.
type ciInclude uint8

const (
	ciIncludeTags ciInclude = 1 << iota
	ciIncludeHealth
)

// ciTaskCounts are the running and pending tasks on one instance.
type ciTaskCounts struct{ running, pending, active int32 }

// ciCountTasks counts the tasks of cluster by the instance they are placed on.
func ciCountTasks(snap *cache.Snapshot, scope resource.Scope, cluster string) map[string]ciTaskCounts {
	out := map[string]ciTaskCounts{}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" {
			return true
		}
		n := out[t.InstanceID]
		switch what, _ := t.CountsAs(); what {
		case resource.CountRunningTask:
			n.running++
		case resource.CountPendingTask:
			n.pending++
		}
		if t.LastStatus != "STOPPED" {
			n.active++
		}
		out[t.InstanceID] = n
		return true
	})
	return out
}

// ciActiveTasks is the number of not yet STOPPED tasks on an instance.
func ciActiveTasks(snap *cache.Snapshot, scope resource.Scope, cluster, id string) int32 {
	return ciCountTasks(snap, scope, cluster)[id].active
}

// instanceAgentConnected reports whether an instance's agent counts as
// connected at now: its agent holds a connection and has sent a heartbeat
// within three heartbeat intervals. An instance a client registered through
// the API has no agent channel to watch; it counts as connected (and so can
// be placed on), as an ECS instance with a running agent would.
func (s *Server) instanceAgentConnected(snap *cache.Snapshot, ci *resource.ContainerInstance, now time.Time) bool {
	if ci.Status == resource.InstanceInactive {
		return false
	}
	if ci.SecretHash == "" {
		return true
	}
	p, ok := Peek[resource.Presence](snap, ci.Scope.PresenceKey(ci.Cluster, ci.ID))
	return ok && p.Alive(now, 3*s.cfg.HeartbeatInterval)
}

// instanceView is the wire view of a stored instance at revision rev.
func (s *Server) instanceView(snap *cache.Snapshot, rec *resource.ContainerInstance, rev int64, now time.Time, include ciInclude) ecs.ContainerInstance {
	return s.instanceViewCounted(snap, rec, rev, now, include, ciCountTasks(snap, rec.Scope, rec.Cluster)[rec.ID])
}

func (s *Server) instanceViewCounted(snap *cache.Snapshot, rec *resource.ContainerInstance, rev int64, now time.Time, include ciInclude, counts ciTaskCounts) ecs.ContainerInstance {
	v := Clone(&rec.ContainerInstance)
	v.RegisteredResources = wireList(v.RegisteredResources)
	v.RemainingResources = ciRemaining(rec)
	v.Attributes = wireList(v.Attributes)
	v.RunningTasksCount = counts.running
	v.PendingTasksCount = counts.pending
	v.AgentConnected = s.instanceAgentConnected(snap, rec, now)
	v.Version = rev
	if include&ciIncludeTags != 0 {
		v.Tags = wireList(v.Tags)
	} else {
		v.Tags = nil
	}
	v.HealthStatus = nil
	if include&ciIncludeHealth != 0 {
		v.HealthStatus = s.instanceHealth(snap, rec, v.AgentConnected)
	}
	return *v
}

// instanceHealth reports the container runtime check from the agent's
// presence: OK while the agent is connected (it reaches the runtime on every
// task change), INSUFFICIENT_DATA otherwise.
func (s *Server) instanceHealth(snap *cache.Snapshot, rec *resource.ContainerInstance, connected bool) *ecs.ContainerInstanceHealthStatus {
	state := ecs.InstanceHealthCheckStateOK
	if !connected {
		state = ecs.InstanceHealthCheckStateINSUFFICIENTDATA
	}
	updated := rec.RegisteredAt
	if p, ok := Peek[resource.Presence](snap, rec.Scope.PresenceKey(rec.Cluster, rec.ID)); ok && !p.LastHeartbeat.IsZero() {
		updated = ecs.NewTime(p.LastHeartbeat)
	}
	return &ecs.ContainerInstanceHealthStatus{
		OverallStatus: state,
		Details: []ecs.InstanceHealthCheckResult{{
			Type: ecs.InstanceHealthCheckTypeCONTAINERRUNTIME, Status: state,
			LastUpdated: updated, LastStatusChange: rec.RegisteredAt,
		}},
	}
}

// ciRemaining is registered less what placed tasks hold. As ECS reports it,
// the PORTS sets list the ports in use: the reserved ones plus the tasks'.
func ciRemaining(rec *resource.ContainerInstance) []ecs.Resource {
	out := make([]ecs.Resource, 0, len(rec.RegisteredResources))
	for _, r := range rec.RegisteredResources {
		r.StringSetValue = slices.Clone(r.StringSetValue)
		switch r.Name {
		case ciResCPU:
			r.IntegerValue -= int32(rec.Used.CPU)
		case ciResMemory:
			r.IntegerValue -= int32(rec.Used.Memory)
		case ciResPorts:
			r.StringSetValue = ciAddPorts(r.StringSetValue, rec.Used.TCPPorts)
		case ciResPortsUDP:
			r.StringSetValue = ciAddPorts(r.StringSetValue, rec.Used.UDPPorts)
		}
		out = append(out, r)
	}
	return out
}

func ciAddPorts(set []string, used []int32) []string {
	sorted := slices.Clone(used)
	slices.Sort(sorted)
	for _, p := range sorted {
		if s := strconv.Itoa(int(p)); !slices.Contains(set, s) {
			set = append(set, s)
		}
	}
	return wireList(set)
}

// ciParseRef turns a container instance reference (an id, a long ARN
// container-instance/<cluster>/<id>, or a short one container-instance/<id>)
// into an id in cluster. ok is false for an ARN of another cluster, account
// or region, or something that is no reference at all.
func ciParseRef(scope resource.Scope, cluster, ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	if !strings.HasPrefix(ref, "arn:") {
		if strings.ContainsAny(ref, "/:") {
			return "", false
		}
		return ref, true
	}
	a, err := resource.ParseARN(ref)
	if err != nil || a.Type != "container-instance" || a.Scope != scope {
		return "", false
	}
	switch len(a.Parts) {
	case 1:
		return a.Parts[0], a.Parts[0] != ""
	case 2:
		return a.Parts[1], a.Parts[0] == cluster && a.Parts[1] != ""
	}
	return "", false
}

// ciMissing is the failure for a reference to no instance of the cluster.
func ciMissing(scope resource.Scope, cluster, ref string) ecs.Failure {
	arn := ref
	if !strings.HasPrefix(ref, "arn:") {
		arn = scope.ContainerInstanceARN(cluster, ref)
	}
	return ecs.Failure{Arn: arn, Reason: "MISSING"}
}

// ---- DescribeContainerInstances

func (s *Server) describeContainerInstances(c *Call, in *ecs.DescribeContainerInstancesRequest) (*ecs.DescribeContainerInstancesResponse, error) {
	if len(in.ContainerInstances) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstances: at least one container instance is required.")
	}
	if len(in.ContainerInstances) > maxDescribeContainerInstances {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstances: at most %d container instances can be described at once; got %d.", maxDescribeContainerInstances, len(in.ContainerInstances))
	}
	var include ciInclude
	for _, f := range in.Include {
		switch f {
		case ecs.ContainerInstanceFieldTAGS:
			include |= ciIncludeTags
		case ecs.ContainerInstanceFieldCONTAINERINSTANCEHEALTH:
			include |= ciIncludeHealth
		}
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	snap := c.Snapshot()
	counts := ciCountTasks(snap, scope, cluster.ClusterName)
	out := &ecs.DescribeContainerInstancesResponse{ContainerInstances: []ecs.ContainerInstance{}, Failures: []ecs.Failure{}}
	seen := map[string]bool{}
	for _, ref := range in.ContainerInstances {
		id, ok := ciParseRef(scope, cluster.ClusterName, ref)
		if !ok {
			out.Failures = append(out.Failures, ciMissing(scope, cluster.ClusterName, ref))
			continue
		}
		e, found := snap.Get(scope.ContainerInstanceKey(cluster.ClusterName, id))
		rec, isCI := (*resource.ContainerInstance)(nil), false
		if found {
			rec, isCI = e.Obj.(*resource.ContainerInstance)
		}
		if !isCI {
			out.Failures = append(out.Failures, ciMissing(scope, cluster.ClusterName, ref))
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		// Deregistered (INACTIVE) instances stay describable until collected, as in ECS.
		out.ContainerInstances = append(out.ContainerInstances, s.instanceViewCounted(snap, rec, e.Rev, c.Now, include, counts[id]))
	}
	return out, nil
}

// ---- ListContainerInstances

func (s *Server) listContainerInstances(c *Call, in *ecs.ListContainerInstancesRequest) (*ecs.ListContainerInstancesResponse, error) {
	limit := maxListContainerInstances
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListContainerInstances {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxListContainerInstances, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	if in.Status != "" && !in.Status.Valid() {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "status: %q is not valid; valid values are %s.", in.Status, strings.Join(in.Status.Values(), ", "))
	}
	var filter *cql.Expr
	if strings.TrimSpace(in.Filter) != "" {
		expr, err := cql.Parse(in.Filter)
		if err != nil {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "filter: %v.", err)
		}
		filter = expr
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil || len(b) == 0 {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken of a previous ListContainerInstances response.")
		}
		after = string(b)
	}
	cluster, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	snap := c.Snapshot()
	var counts map[string]ciTaskCounts
	var groups map[string]map[string]int
	if filter != nil {
		counts = ciCountTasks(snap, scope, cluster.ClusterName)
		if filter.UsesTaskGroup() {
			groups = ciTaskGroups(snap, scope, cluster.ClusterName)
		}
	}
	prefix := scope.KindPrefix(resource.KindContainerInstance, cluster.ClusterName)
	from := prefix
	if after != "" {
		from = prefix + after + "\x00"
	}
	out := &ecs.ListContainerInstancesResponse{ContainerInstanceArns: []string{}}
	last := ""
	snap.WalkFrom(prefix, from, func(e *cache.Entry) bool {
		rec, ok := e.Obj.(*resource.ContainerInstance)
		if !ok {
			return true
		}
		if !ciStatusMatches(rec.Status, in.Status) {
			return true
		}
		if filter != nil && !filter.Eval(s.ciTarget(snap, rec, c.Now, counts[rec.ID], groups[rec.ID])) {
			return true
		}
		if len(out.ContainerInstanceArns) == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(last))
			return false
		}
		out.ContainerInstanceArns = append(out.ContainerInstanceArns, rec.ContainerInstanceArn)
		last = rec.ID
		return true
	})
	return out, nil
}

// ciStatusMatches applies ListContainerInstances' status filter: without one,
// every instance but INACTIVE ones.
func ciStatusMatches(status string, want ecs.ContainerInstanceStatus) bool {
	if want == "" {
		return status != resource.InstanceInactive
	}
	return status == string(want)
}

// ciTarget is the instance as the cluster query language sees it.
func (s *Server) ciTarget(snap *cache.Snapshot, rec *resource.ContainerInstance, now time.Time, counts ciTaskCounts, groups map[string]int) *cql.Object {
	o := &cql.Object{
		Attributes:        make(map[string]string, len(rec.Attributes)),
		Connected:         s.instanceAgentConnected(snap, rec, now),
		EC2ID:             rec.Ec2InstanceId,
		RunningTasks:      int(counts.running),
		TaskGroupsByCount: groups,
	}
	for _, a := range rec.Attributes {
		o.Attributes[a.Name] = a.Value
	}
	if rec.VersionInfo != nil {
		o.Version = rec.VersionInfo.AgentVersion
	}
	if rec.RegisteredAt != nil {
		o.Registered = rec.RegisteredAt.Time
	}
	return o
}

// ciTaskGroups counts the not yet stopped tasks of each group on each instance.
func ciTaskGroups(snap *cache.Snapshot, scope resource.Scope, cluster string) map[string]map[string]int {
	out := map[string]map[string]int{}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" || t.LastStatus == "STOPPED" || t.Group == "" {
			return true
		}
		if out[t.InstanceID] == nil {
			out[t.InstanceID] = map[string]int{}
		}
		out[t.InstanceID][t.Group]++
		return true
	})
	return out
}
