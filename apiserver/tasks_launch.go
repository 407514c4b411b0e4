package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/taskbuild"
)

// What RunTask and StartTask share: validating the call and turning the task
// definition and overrides into a taskbuild.Spec, which computes what one copy
// needs from an instance and builds the new task records (as it does for the
// service scheduler).

const (
	taskMaxStartedByLen    = 128
	taskMaxGroupLen        = 255
	taskMaxReferenceIDLen  = 64
	taskMaxOverridesLen    = 8192
	taskMaxTags            = 50
	taskMinContainerMemory = 6
	taskManagedClusterTag  = "aws:ecs:clusterName"
)

// taskLaunchRequest is the part of RunTask and StartTask they have in common.
type taskLaunchRequest struct {
	taskDefinition       string
	overrides            *ecs.TaskOverride
	group                string
	startedBy            string
	referenceID          string
	tags                 []ecs.Tag
	propagateTags        ecs.PropagateTags
	enableManagedTags    bool
	enableExecuteCommand bool
	networkConfiguration *ecs.NetworkConfiguration
	volumeConfigurations []ecs.TaskVolumeConfiguration
	platformVersion      string
}

// taskLaunch is a validated taskLaunchRequest: everything needed to place copies and
// build their records.
type taskLaunch struct {
	scope      resource.Scope
	cluster    string
	clusterKey string
	defKey     string
	def        *resource.TaskDefinition // private copy
	launchType ecs.LaunchType
	need       scheduler.Task
	// defConstraints are the task definition's placement constraints.
	defConstraints []scheduler.Constraint
	// spec builds each copy's record (taskbuild); the call sets its placement
	// constraints and strategy, recorded on copies that wait for capacity.
	spec taskbuild.Spec
}

// prepareLaunch validates r for the launch ls in the (already resolved,
// ACTIVE) cluster. Nothing is written.
func (s *Server) prepareLaunch(c *Call, r *taskLaunchRequest, cluster *resource.Cluster, ls launchSpec) (*taskLaunch, error) {
	launchType := ls.launchType
	scope := c.Scope()
	if len(r.startedBy) > taskMaxStartedByLen {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "startedBy: must be at most %d characters; got %d.", taskMaxStartedByLen, len(r.startedBy))
	}
	if len(r.group) > taskMaxGroupLen {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "group: must be at most %d characters; got %d.", taskMaxGroupLen, len(r.group))
	}
	if len(r.referenceID) > taskMaxReferenceIDLen {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "referenceId: must be at most %d characters; got %d.", taskMaxReferenceIDLen, len(r.referenceID))
	}
	if len(r.volumeConfigurations) > 0 {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "volumeConfigurations: ecsd does not attach Amazon EBS volumes to tasks yet.")
	}
	def, defKey, err := resolveRunnableTaskDefinition(c.Snapshot(), scope, r.taskDefinition)
	if err != nil {
		return nil, err
	}
	if launchType == ecs.LaunchTypeEXTERNAL && taskDefNetworkMode(&def.TaskDefinition) == ecs.NetworkModeAwsvpc {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "networkMode: EXTERNAL instances do not support awsvpc; register the task definition with bridge, host or none.")
	}
	if !slices.Contains(def.Compatibilities, ecs.Compatibility(launchType)) {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "Task definition does not support launch_type %s.", launchType)
	}
	pv, err := resolvePlatformVersion(ls, r.platformVersion)
	if err != nil {
		return nil, err
	}
	l := &taskLaunch{
		scope: scope, cluster: cluster.ClusterName, clusterKey: scope.ClusterKey(cluster.ClusterName),
		defKey: defKey, def: def, launchType: launchType,
		spec: taskbuild.Spec{
			Scope: scope, Cluster: cluster.ClusterName, Definition: &def.TaskDefinition,
			Group: r.group, StartedBy: r.startedBy, ReferenceID: r.referenceID,
			EnableExecuteCommand: r.enableExecuteCommand, ShortARN: !s.longARNFormat(c, "task"),
		},
	}
	if l.spec.Group == "" {
		l.spec.Group = scheduler.FamilyGroup(def.Family)
	}
	if err := l.applyOverrides(r.overrides); err != nil {
		return nil, err
	}
	if ls.fargate() {
		if err := checkFargateSize(l.spec.CPU, l.spec.Memory); err != nil {
			return nil, err
		}
		if l.spec.EphemeralStorage, err = fargateStorage(&def.TaskDefinition, r.overrides); err != nil {
			return nil, err
		}
		l.spec.PlatformVersion = pv
	}
	if err := l.setNetwork(r.networkConfiguration); err != nil {
		return nil, err
	}
	if l.spec.Tags, err = taskLaunchTags(r, def, cluster.ClusterName); err != nil {
		return nil, err
	}
	l.need, l.spec.Reserve = taskbuild.Needs(&def.TaskDefinition, l.spec.Containers, l.spec.CPU, l.spec.Memory)
	for _, pc := range def.PlacementConstraints {
		l.defConstraints = append(l.defConstraints, scheduler.Constraint{Type: string(pc.Type), Expression: pc.Expression})
	}
	return l, nil
}

// resolveRunnableTaskDefinition finds the revision ident names and refuses
// revisions that cannot start new tasks (deregistered or being deleted).
func resolveRunnableTaskDefinition(snap *cache.Snapshot, scope resource.Scope, ident string) (*resource.TaskDefinition, string, error) {
	rec, key, err := resolveTaskDefinition(snap, scope, ident)
	if err != nil {
		return nil, "", err
	}
	if rec == nil {
		return nil, "", ecs.Errorf(ecs.CodeClient, "TaskDefinition not found.")
	}
	switch rec.Status {
	case ecs.TaskDefinitionStatusACTIVE:
	case ecs.TaskDefinitionStatusINACTIVE:
		return nil, "", ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition is inactive")
	default:
		return nil, "", ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition %s is being deleted (%s).", rec.TaskDefinitionArn, rec.Status)
	}
	return Clone(rec), key, nil
}

// applyOverrides validates the call's overrides against the definition and
// records the effective containers and task size.
func (l *taskLaunch) applyOverrides(in *ecs.TaskOverride) error {
	o := &ecs.TaskOverride{}
	if in != nil {
		o = Clone(in)
	}
	if b, _ := json.Marshal(o); len(b) > taskMaxOverridesLen {
		return ecs.Errorf(ecs.CodeInvalidParameter, "Container Overrides length must be at most %d; got %d.", taskMaxOverridesLen, len(b))
	}
	given := map[string]ecs.ContainerOverride{}
	for i, co := range o.ContainerOverrides {
		p := "overrides.containerOverrides[" + strconv.Itoa(i) + "]"
		switch {
		case co.Name == "":
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.name is required.", p)
		case !slices.ContainsFunc(l.def.ContainerDefinitions, func(d ecs.ContainerDefinition) bool { return d.Name == co.Name }):
			return ecs.Errorf(ecs.CodeInvalidParameter, "Override for container named %s is not a container in the TaskDefinition.", co.Name)
		case given[co.Name].Name != "":
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s: container %s is overridden more than once.", p, co.Name)
		case co.Cpu != nil && *co.Cpu < 0:
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.cpu: must not be negative.", p)
		case co.Memory != nil && *co.Memory < taskMinContainerMemory:
			return ecs.Errorf(ecs.CodeInvalidParameter, "Invalid 'memory' setting for container '%s'. The value must be at least %d MiB.", co.Name, taskMinContainerMemory)
		case co.MemoryReservation != nil && *co.MemoryReservation < taskMinContainerMemory:
			return ecs.Errorf(ecs.CodeInvalidParameter, "Invalid 'memoryReservation' setting for container '%s'. The value must be at least %d MiB.", co.Name, taskMinContainerMemory)
		}
		for j, kv := range co.Environment {
			if kv.Name == "" {
				return ecs.Errorf(ecs.CodeInvalidParameter, "%s.environment[%d].name is required.", p, j)
			}
		}
		given[co.Name] = co
	}
	var err error
	cpu, mem := l.def.Cpu, l.def.Memory
	if o.Cpu != "" {
		if cpu, _, err = parseTaskDefCPU(o.Cpu); err != nil {
			return overrideErr("overrides.cpu", err)
		}
		o.Cpu = cpu
	}
	if o.Memory != "" {
		if mem, _, err = parseTaskDefMemory(o.Memory); err != nil {
			return overrideErr("overrides.memory", err)
		}
		o.Memory = mem
	}
	l.spec.CPU, l.spec.Memory = cpu, mem
	l.spec.Containers = resource.ApplyContainerOverrides(l.def.ContainerDefinitions, o)
	taskMem, _ := strconv.Atoi(mem)
	for _, ct := range l.spec.Containers {
		if ct.Memory != nil && ct.MemoryReservation != nil && *ct.MemoryReservation > *ct.Memory {
			return ecs.Errorf(ecs.CodeInvalidParameter, "Invalid setting for container '%s'. 'memoryReservation' must be less than or equal to 'memory'.", ct.Name)
		}
		if taskMem > 0 && ct.Memory != nil && int(*ct.Memory) > taskMem {
			return ecs.Errorf(ecs.CodeInvalidParameter, "The 'memory' setting for container '%s' is greater than for the task.", ct.Name)
		}
	}
	// The task reports one override entry per container, in definition order:
	// the one given, or just the name (as ECS answers).
	l.spec.Overrides = taskbuild.Overrides(l.def.ContainerDefinitions, o)
	return nil
}

// overrideErr renames a task definition size error for the override field.
func overrideErr(field string, err error) error {
	var e *ecs.Error
	if errors.As(err, &e) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s: %s", field, e.Message)
	}
	return err
}

// setNetwork applies ECS's rules for networkConfiguration: required for
// awsvpc definitions (with at least one subnet), refused for other modes.
func (l *taskLaunch) setNetwork(nc *ecs.NetworkConfiguration) error {
	mode := taskDefNetworkMode(&l.def.TaskDefinition)
	hasCfg := nc != nil && nc.AwsvpcConfiguration != nil
	if mode != ecs.NetworkModeAwsvpc {
		if hasCfg {
			return ecs.Errorf(ecs.CodeInvalidParameter, "Network Configuration is not valid for the given networkMode of this task definition.")
		}
		return nil
	}
	if !hasCfg {
		return ecs.Errorf(ecs.CodeInvalidParameter, "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	vpc := nc.AwsvpcConfiguration
	if len(vpc.Subnets) == 0 {
		return ecs.Errorf(ecs.CodeInvalidParameter, "subnets can not be empty.")
	}
	if len(vpc.Subnets) > 16 {
		return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.subnets: at most 16 subnets are allowed; got %d.", len(vpc.Subnets))
	}
	if len(vpc.SecurityGroups) > 5 {
		return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.securityGroups: at most 5 security groups are allowed; got %d.", len(vpc.SecurityGroups))
	}
	for i, sn := range vpc.Subnets {
		if strings.TrimSpace(sn) == "" {
			return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.subnets[%d] is empty.", i)
		}
	}
	// Only Fargate tasks may ask for a public IP (ecsd gives none: the task
	// is reachable on its private address from the host).
	if vpc.AssignPublicIp == ecs.AssignPublicIpENABLED && l.launchType != ecs.LaunchTypeFARGATE {
		return ecs.Errorf(ecs.CodeInvalidParameter, "Assign public IP is not supported for this launch type.")
	}
	l.spec.NetworkConfiguration = Clone(nc)
	return nil
}

// taskLaunchTags is the task's tag list: the definition's when propagated, then
// the call's (which win on the same key), then ECS's managed tags.
func taskLaunchTags(r *taskLaunchRequest, def *resource.TaskDefinition, cluster string) ([]ecs.Tag, error) {
	if err := validateClusterTags("tags", r.tags); err != nil {
		return nil, err
	}
	var tags []ecs.Tag
	switch r.propagateTags {
	case "", ecs.PropagateTagsNONE:
	case ecs.PropagateTagsTASKDEFINITION:
		tags = slices.Clone(def.Tags)
	default:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "propagateTags: %s is only valid for tasks started by a service; use TASK_DEFINITION or NONE.", r.propagateTags)
	}
	tags = mergeTags(tags, r.tags)
	if countUserTags(tags) > taskMaxTags {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "tags: a task can have at most %d tags; with the task definition's it would have %d.", taskMaxTags, countUserTags(tags))
	}
	if r.enableManagedTags {
		tags = mergeTags(tags, []ecs.Tag{{Key: taskManagedClusterTag, Value: cluster}})
	}
	return tags, nil
}

// checkStillRunnable re-reads the cluster and the definition in snap (a plan
// may run on a newer snapshot than the call's) and returns the conditions the
// plan's transaction must hold: neither changed since.
func (l *taskLaunch) checkStillRunnable(snap *cache.Snapshot) ([]store.Op, error) {
	ce, ok := snap.Get(l.clusterKey)
	if cl, isCluster := taskObjAs[resource.Cluster](ce, ok); !isCluster || cl.Status != clusterStatusActive {
		return nil, errClusterNotFound()
	}
	de, ok := snap.Get(l.defKey)
	d, isDef := taskObjAs[resource.TaskDefinition](de, ok)
	if !isDef {
		return nil, ecs.Errorf(ecs.CodeClient, "TaskDefinition not found.")
	}
	if d.Status != ecs.TaskDefinitionStatusACTIVE {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition is inactive")
	}
	return []store.Op{store.Check(l.clusterKey, ce.Rev), store.Check(l.defKey, de.Rev)}, nil
}

func taskObjAs[T any](e *cache.Entry, ok bool) (*T, bool) {
	if !ok || e == nil {
		return nil, false
	}
	v, ok := e.Obj.(*T)
	return v, ok
}

// taskPlacementInstances is the scheduler's view of the cluster's container
// instances that can take tasks of launchType: registered resources less what
// tasks hold, whether the agent is connected, and the task groups and running
// tasks on each. Deregistered instances are left out. Instances a client
// registered through the API (no agent) count as connected: ECS places onto
// them, so clients can exercise placement without agents.
func (s *Server) taskPlacementInstances(snap *cache.Snapshot, scope resource.Scope, cluster string, c *Call, lt ecs.LaunchType) ([]scheduler.Instance, map[string]*resource.ContainerInstance) {
	byID := map[string]*resource.ContainerInstance{}
	var views []scheduler.Instance
	index := map[string]int{}
	timeout := 3 * s.cfg.HeartbeatInterval
	snap.Walk(scope.KindPrefix(resource.KindContainerInstance, cluster), func(e *cache.Entry) bool {
		ci, ok := e.Obj.(*resource.ContainerInstance)
		if !ok || ci.Cluster != cluster || ci.Status == resource.InstanceInactive || ci.Fargate {
			return true
		}
		if lt != "" && ci.External != (lt == ecs.LaunchTypeEXTERNAL) {
			return true
		}
		connected := ci.SecretHash == ""
		if !connected {
			p, _ := Peek[resource.Presence](snap, scope.PresenceKey(cluster, ci.ID))
			connected = p.Alive(c.Now, timeout)
		}
		v := taskInstanceView(ci, connected)
		index[ci.ID] = len(views)
		views = append(views, v)
		byID[ci.ID] = ci
		return true
	})
	if len(views) == 0 {
		return views, byID
	}
	snap.Walk(scope.KindPrefix(resource.KindTask, cluster), func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" || t.LastStatus == taskStatusStopped {
			return true
		}
		i, ok := index[t.InstanceID]
		if !ok {
			return true
		}
		views[i].GroupTasks[t.Group]++
		if t.LastStatus == taskStatusRunning {
			views[i].RunningTasks++
		}
		return true
	})
	return views, byID
}

// taskPlacementSeed makes a call's random choices repeatable from its request ID.
func taskPlacementSeed(c *Call) int64 {
	h := fnv.New64a()
	h.Write([]byte(c.RequestID))
	return int64(h.Sum64() >> 1)
}

// taskPlacementFailures turns the scheduler's explanation into RunTask's
// failures[]: one entry per instance that refused (ECS's form), else one per
// distinct reason.
func taskPlacementFailures(p scheduler.Plan) []ecs.Failure {
	var out []ecs.Failure
	if len(p.InstanceFailures) > 0 {
		for _, f := range p.InstanceFailures {
			out = append(out, ecs.Failure{Arn: f.ARN, Reason: f.Reason, Detail: f.Detail})
		}
		return out
	}
	for _, f := range p.Failures {
		fl := ecs.Failure{Arn: f.ARN, Reason: f.Reason, Detail: f.Detail}
		if !slices.Contains(out, fl) {
			out = append(out, fl)
		}
	}
	return out
}

// taskPlacementParamError maps the scheduler's validation errors to
// InvalidParameterException.
func taskPlacementParamError(err error) error {
	if errors.Is(err, scheduler.ErrInvalidParameter) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%v", err)
	}
	return fmt.Errorf("placement: %w", err)
}

// taskInstanceView completes the planner's view of an instance with what the
// cluster query language and the strategies read.
func taskInstanceView(ci *resource.ContainerInstance, connected bool) scheduler.Instance {
	v := planner.InstanceView(ci, connected)
	v.GroupTasks = map[string]int{}
	v.EC2InstanceID = ci.Ec2InstanceId
	if ci.VersionInfo != nil {
		v.AgentVersion = ci.VersionInfo.AgentVersion
	}
	if ci.RegisteredAt != nil {
		v.RegisteredAt = ci.RegisteredAt.Time
	}
	return v
}
