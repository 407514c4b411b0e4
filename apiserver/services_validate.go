package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// serviceSpec is a validated CreateService request with ECS's defaults.
type serviceSpec struct {
	td              *resource.TaskDefinition
	desired         int32
	scheduling      ecs.SchedulingStrategy
	launchType      ecs.LaunchType
	capacity        []ecs.CapacityProviderStrategyItem
	platformVersion string
	deployment      *ecs.DeploymentConfiguration
	propagate       ecs.PropagateTags
	azRebalancing   ecs.AvailabilityZoneRebalancing
}

const (
	maxServiceLoadBalancers = 5
	maxServiceSubnets       = 16
	maxServiceSecurityGrps  = 5
)

func (s *Server) validateCreateService(c *Call, cl *resource.Cluster, in *ecs.CreateServiceRequest) (*serviceSpec, error) {
	spec := &serviceSpec{scheduling: in.SchedulingStrategy, propagate: in.PropagateTags, platformVersion: in.PlatformVersion}
	if spec.scheduling == "" {
		spec.scheduling = ecs.SchedulingStrategyREPLICA
	}
	if spec.propagate == "" {
		spec.propagate = ecs.PropagateTagsNONE
	}
	if err := svcCheckController(in.DeploymentController); err != nil {
		return nil, err
	}
	if in.TaskDefinition == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "taskDefinition: required for the ECS deployment controller.")
	}
	td, err := svcTaskDefinition(c, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	spec.td = td
	daemon := spec.scheduling == ecs.SchedulingStrategyDAEMON
	switch {
	case daemon && in.DesiredCount != nil:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "desiredCount: not supported for the DAEMON scheduling strategy; a daemon service runs one task on each container instance.")
	case daemon && len(in.PlacementStrategy) > 0:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "placementStrategy: not supported for the DAEMON scheduling strategy.")
	case !daemon && in.DesiredCount == nil:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "desiredCount: required for the REPLICA scheduling strategy.")
	case in.DesiredCount != nil && *in.DesiredCount < 0:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "desiredCount: must be 0 or more; got %d.", *in.DesiredCount)
	}
	if in.DesiredCount != nil {
		spec.desired = *in.DesiredCount
	}
	if daemon {
		// One task per ACTIVE instance; the controller refines this by the
		// placement constraints as it goes.
		spec.desired = svcActiveInstances(c, cl.ClusterName)
	}
	// Launch type or capacity provider strategy; EC2 unless the cluster has
	// a default strategy.
	if daemon && len(in.CapacityProviderStrategy) > 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviderStrategy: not supported for the DAEMON scheduling strategy; use launchType EC2 or EXTERNAL.")
	}
	lt := in.LaunchType
	if daemon && lt == "" && len(in.CapacityProviderStrategy) == 0 {
		lt = ecs.LaunchTypeEC2 // a daemon never takes the cluster's default strategy
	}
	ls, err := resolveLaunchSpec(c.Snapshot(), c.Scope(), cl, lt, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	switch {
	case len(ls.strategy) > 0 && len(in.CapacityProviderStrategy) > 0:
		spec.capacity = in.CapacityProviderStrategy
	case len(ls.strategy) > 0:
		spec.capacity = cl.DefaultCapacityProviderStrategy
	default:
		spec.launchType = ls.launchType
	}
	if daemon && spec.launchType == ecs.LaunchTypeFARGATE {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "schedulingStrategy: DAEMON is not supported for the FARGATE launch type.")
	}
	if _, err := resolvePlatformVersion(ls, spec.platformVersion); err != nil {
		return nil, err
	}
	if err := svcCheckLaunchCompat(&td.TaskDefinition, ls, in.LoadBalancers); err != nil {
		return nil, err
	}
	if err := svcCheckPublicIP(ls.fargate(), in.NetworkConfiguration); err != nil {
		return nil, err
	}
	if spec.deployment, err = svcDeploymentConfig(in.DeploymentConfiguration, nil, spec.scheduling); err != nil {
		return nil, err
	}
	if err := svcCheckPlacement(&td.TaskDefinition, in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	if err := svcCheckNetwork(&td.TaskDefinition, in.NetworkConfiguration); err != nil {
		return nil, err
	}
	if err := svcCheckLoadBalancers(&td.TaskDefinition, in.LoadBalancers); err != nil {
		return nil, err
	}
	if err := validateClusterTags("tags", in.Tags); err != nil {
		return nil, err
	}
	if g := in.HealthCheckGracePeriodSeconds; g != nil && *g < 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "healthCheckGracePeriodSeconds: must be 0 or more; got %d.", *g)
	}
	spec.azRebalancing = in.AvailabilityZoneRebalancing
	if spec.azRebalancing == "" {
		spec.azRebalancing = svcDefaultRebalancing(spec.scheduling, in.PlacementStrategy)
	}
	return spec, nil
}

// svcDefaultRebalancing is ECS's default for a new service: ENABLED when the
// service is compatible (a REPLICA service spreading across Availability
// Zones first, which is also the default placement), DISABLED otherwise.
func svcDefaultRebalancing(sched ecs.SchedulingStrategy, strategies []ecs.PlacementStrategy) ecs.AvailabilityZoneRebalancing {
	if sched == ecs.SchedulingStrategyDAEMON {
		return ecs.AvailabilityZoneRebalancingDISABLED
	}
	if len(strategies) == 0 || (strategies[0].Type == ecs.PlacementStrategyTypeSpread && strategies[0].Field == "attribute:"+scheduler.AZAttribute) {
		return ecs.AvailabilityZoneRebalancingENABLED
	}
	return ecs.AvailabilityZoneRebalancingDISABLED
}

func svcActiveInstances(c *Call, cluster string) int32 {
	var n int32
	c.Snapshot().Walk(c.Scope().KindPrefix(resource.KindContainerInstance, cluster), func(e *cache.Entry) bool {
		if ci, ok := e.Obj.(*resource.ContainerInstance); ok && ci.Status == resource.InstanceActive {
			n++
		}
		return true
	})
	return n
}

func svcCheckController(dc *ecs.DeploymentController) error {
	if dc != nil && dc.Type != "" && dc.Type != ecs.DeploymentControllerTypeECS {
		return ecs.Errorf(ecs.CodeUnsupportedFeature, "deploymentController: ecsd supports the ECS deployment controller only, not %s.", dc.Type)
	}
	return nil
}

// svcTaskDefinition resolves a task definition a service may use: it must
// exist and be ACTIVE.
func svcTaskDefinition(c *Call, ident string) (*resource.TaskDefinition, error) {
	rec, _, err := resolveTaskDefinition(c.Snapshot(), c.Scope(), ident)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition not found.")
	}
	if rec.Status != ecs.TaskDefinitionStatusACTIVE {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition is inactive.")
	}
	return rec, nil
}

// svcDeploymentConfig merges update into cur (or the defaults for the
// scheduling strategy) and validates the result.
func svcDeploymentConfig(update, cur *ecs.DeploymentConfiguration, sched ecs.SchedulingStrategy) (*ecs.DeploymentConfiguration, error) {
	daemon := sched == ecs.SchedulingStrategyDAEMON
	out := &ecs.DeploymentConfiguration{}
	if cur != nil {
		b, _ := json.Marshal(cur)
		json.Unmarshal(b, out)
	} else {
		minPct, maxPct := int32(100), int32(200)
		if daemon {
			minPct, maxPct = 0, 100
		}
		out.MinimumHealthyPercent, out.MaximumPercent = &minPct, &maxPct
		out.DeploymentCircuitBreaker = &ecs.DeploymentCircuitBreaker{}
		out.Strategy = ecs.DeploymentStrategyROLLING
	}
	if update != nil {
		if update.MinimumHealthyPercent != nil {
			out.MinimumHealthyPercent = update.MinimumHealthyPercent
		}
		if update.MaximumPercent != nil {
			out.MaximumPercent = update.MaximumPercent
		}
		if update.DeploymentCircuitBreaker != nil {
			cb := *update.DeploymentCircuitBreaker
			out.DeploymentCircuitBreaker = &cb
		}
		if update.Alarms != nil {
			out.Alarms = update.Alarms
		}
		if update.Strategy != "" {
			out.Strategy = update.Strategy
		}
		if update.BakeTimeInMinutes != nil {
			out.BakeTimeInMinutes = update.BakeTimeInMinutes
		}
		if update.LifecycleHooks != nil {
			out.LifecycleHooks = update.LifecycleHooks
		}
	}
	if out.Strategy != "" && out.Strategy != ecs.DeploymentStrategyROLLING {
		return nil, ecs.Errorf(ecs.CodeUnsupportedFeature, "deploymentConfiguration.strategy: ecsd runs ROLLING deployments only, not %s.", out.Strategy)
	}
	minPct, maxPct := *out.MinimumHealthyPercent, *out.MaximumPercent
	switch {
	case minPct < 0 || minPct > 100:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "deploymentConfiguration.minimumHealthyPercent: must be between 0 and 100; got %d.", minPct)
	case daemon && maxPct != 100:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "deploymentConfiguration.maximumPercent: must be 100 for the DAEMON scheduling strategy; got %d.", maxPct)
	case maxPct < 100:
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "deploymentConfiguration.maximumPercent: must be at least 100; got %d.", maxPct)
	}
	return out, nil
}

// svcCheckPlacement validates the service's constraints (together with the
// definition's, for the limit of 10) and strategies with the placement
// engine's rules.
func svcCheckPlacement(td *ecs.TaskDefinition, cons []ecs.PlacementConstraint, strat []ecs.PlacementStrategy) error {
	var sc []scheduler.Constraint
	for _, c := range td.PlacementConstraints {
		sc = append(sc, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	for _, c := range cons {
		sc = append(sc, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	if len(cons) > scheduler.MaxConstraints {
		return ecs.Errorf(ecs.CodeInvalidParameter, "placementConstraints: at most %d placement constraints are allowed; got %d.", scheduler.MaxConstraints, len(cons))
	}
	if err := scheduler.ValidateConstraints("placementConstraints", sc); err != nil {
		return svcPlacementError(err)
	}
	ss := make([]scheduler.Strategy, 0, len(strat))
	for _, s := range strat {
		ss = append(ss, scheduler.Strategy{Type: string(s.Type), Field: s.Field})
	}
	if err := scheduler.ValidateStrategies("placementStrategy", ss); err != nil {
		return svcPlacementError(err)
	}
	return nil
}

func svcPlacementError(err error) error {
	if errors.Is(err, scheduler.ErrInvalidParameter) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s.", err.Error())
	}
	return err
}

// svcCheckNetwork applies ECS's rule: awsvpc definitions need a network
// configuration with subnets; others take none.
func svcCheckNetwork(td *ecs.TaskDefinition, nc *ecs.NetworkConfiguration) error {
	awsvpc := td.NetworkMode == ecs.NetworkModeAwsvpc
	switch {
	case awsvpc && (nc == nil || nc.AwsvpcConfiguration == nil):
		return ecs.Errorf(ecs.CodeInvalidParameter, "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	case !awsvpc && nc != nil && nc.AwsvpcConfiguration != nil:
		return ecs.Errorf(ecs.CodeInvalidParameter, "Network Configuration is not valid for the given networkMode of this task definition.")
	}
	if nc == nil || nc.AwsvpcConfiguration == nil {
		return nil
	}
	vc := nc.AwsvpcConfiguration
	switch {
	case len(vc.Subnets) == 0:
		return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.subnets: at least one subnet is required.")
	case len(vc.Subnets) > maxServiceSubnets:
		return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.subnets: at most %d subnets are allowed; got %d.", maxServiceSubnets, len(vc.Subnets))
	case len(vc.SecurityGroups) > maxServiceSecurityGrps:
		return ecs.Errorf(ecs.CodeInvalidParameter, "networkConfiguration.awsvpcConfiguration.securityGroups: at most %d security groups are allowed; got %d.", maxServiceSecurityGrps, len(vc.SecurityGroups))
	}
	return nil
}

// svcCheckLoadBalancers checks that each load balancer names a container and
// port of the definition (the load balancer itself is stored as given).
func svcCheckLoadBalancers(td *ecs.TaskDefinition, lbs []ecs.LoadBalancer) error {
	if len(lbs) > maxServiceLoadBalancers {
		return ecs.Errorf(ecs.CodeInvalidParameter, "loadBalancers: at most %d load balancers are allowed; got %d.", maxServiceLoadBalancers, len(lbs))
	}
	for i, lb := range lbs {
		at := fmt.Sprintf("loadBalancers[%d]", i)
		if lb.ContainerName == "" || lb.ContainerPort == nil {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s: containerName and containerPort are required.", at)
		}
		if !slices.ContainsFunc(td.ContainerDefinitions, func(cd ecs.ContainerDefinition) bool { return cd.Name == lb.ContainerName }) {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s.containerName: the container %s does not exist in the task definition.", at, lb.ContainerName)
		}
		if lb.TargetGroupArn == "" && lb.LoadBalancerName == "" {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s: a targetGroupArn or loadBalancerName is required.", at)
		}
	}
	return nil
}

// applyServiceUpdate applies an UpdateService request to cur (a private copy)
// and starts a new deployment when ECS would: a new task definition,
// forceNewDeployment, or a change of placement, network, capacity, platform,
// load balancers or service registries. A desired count alone changes the
// primary deployment's target.
func (s *Server) applyServiceUpdate(c *Call, cl *resource.Cluster, cur *resource.Service, in *ecs.UpdateServiceRequest) error {
	if err := svcCheckController(in.DeploymentController); err != nil {
		return err
	}
	daemon := cur.SchedulingStrategy == ecs.SchedulingStrategyDAEMON
	deploy := in.ForceNewDeployment
	tdIdent := cur.TaskDefinition
	if in.TaskDefinition != "" {
		tdIdent = in.TaskDefinition
	}
	var td *resource.TaskDefinition
	var err error
	if in.TaskDefinition != "" {
		if td, err = svcTaskDefinition(c, tdIdent); err != nil {
			return err
		}
		if td.TaskDefinitionArn != cur.TaskDefinition {
			cur.TaskDefinition = td.TaskDefinitionArn
			deploy = true
		}
	} else {
		// The current revision may be INACTIVE by now; it still runs.
		rec, _, rerr := resolveTaskDefinition(c.Snapshot(), c.Scope(), tdIdent)
		if rerr != nil || rec == nil {
			return ecs.Errorf(ecs.CodeInvalidParameter, "TaskDefinition not found.")
		}
		td = rec
	}
	if in.DesiredCount != nil {
		switch {
		case daemon:
			return ecs.Errorf(ecs.CodeInvalidParameter, "desiredCount: not supported for the DAEMON scheduling strategy.")
		case *in.DesiredCount < 0:
			return ecs.Errorf(ecs.CodeInvalidParameter, "desiredCount: must be 0 or more; got %d.", *in.DesiredCount)
		}
		cur.DesiredCount = *in.DesiredCount
	}
	if in.DeploymentConfiguration != nil {
		if cur.DeploymentConfiguration, err = svcDeploymentConfig(in.DeploymentConfiguration, cur.DeploymentConfiguration, cur.SchedulingStrategy); err != nil {
			return err
		}
	}
	if in.PlacementStrategy != nil {
		if daemon && len(in.PlacementStrategy) > 0 {
			return ecs.Errorf(ecs.CodeInvalidParameter, "placementStrategy: not supported for the DAEMON scheduling strategy.")
		}
		if !svcSameJSON(in.PlacementStrategy, cur.PlacementStrategy) {
			cur.PlacementStrategy = svcNilIfEmpty(in.PlacementStrategy)
			deploy = true
		}
	}
	if in.PlacementConstraints != nil && !svcSameJSON(in.PlacementConstraints, cur.PlacementConstraints) {
		cur.PlacementConstraints = svcNilIfEmpty(in.PlacementConstraints)
		deploy = true
	}
	if err := svcCheckPlacement(&td.TaskDefinition, cur.PlacementConstraints, cur.PlacementStrategy); err != nil {
		return err
	}
	if in.NetworkConfiguration != nil && !svcSameJSON(in.NetworkConfiguration, cur.NetworkConfiguration) {
		cur.NetworkConfiguration = in.NetworkConfiguration
		deploy = true
	}
	if err := svcCheckNetwork(&td.TaskDefinition, cur.NetworkConfiguration); err != nil {
		return err
	}
	fargate := cur.LaunchType == ecs.LaunchTypeFARGATE ||
		(len(cur.CapacityProviderStrategy) > 0 && resource.IsFargateProvider(cur.CapacityProviderStrategy[0].CapacityProvider))
	if in.CapacityProviderStrategy != nil && len(in.CapacityProviderStrategy) > 0 {
		fargate = resource.IsFargateProvider(in.CapacityProviderStrategy[0].CapacityProvider)
	}
	if err := svcCheckPublicIP(fargate, cur.NetworkConfiguration); err != nil {
		return err
	}
	if in.CapacityProviderStrategy != nil && !svcSameJSON(in.CapacityProviderStrategy, cur.CapacityProviderStrategy) {
		if !in.ForceNewDeployment {
			return ecs.Errorf(ecs.CodeInvalidParameter, "When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment (forceNewDeployment).")
		}
		if len(in.CapacityProviderStrategy) > 0 {
			if daemon {
				return ecs.Errorf(ecs.CodeInvalidParameter, "capacityProviderStrategy: not supported for the DAEMON scheduling strategy.")
			}
			ls, err := resolveLaunchSpec(c.Snapshot(), c.Scope(), cl, "", in.CapacityProviderStrategy)
			if err != nil {
				return err
			}
			if err := svcCheckLaunchCompat(&td.TaskDefinition, ls, cur.LoadBalancers); err != nil {
				return err
			}
		}
		if len(in.CapacityProviderStrategy) > 0 {
			cur.CapacityProviderStrategy, cur.LaunchType = in.CapacityProviderStrategy, ""
		} else {
			cur.CapacityProviderStrategy, cur.LaunchType = nil, ecs.LaunchTypeEC2
		}
		deploy = true
	}
	if in.PlatformVersion != "" && in.PlatformVersion != cur.PlatformVersion {
		cur.PlatformVersion = in.PlatformVersion
		deploy = true
	}
	if in.LoadBalancers != nil && !svcSameJSON(in.LoadBalancers, cur.LoadBalancers) {
		if err := svcCheckLoadBalancers(&td.TaskDefinition, in.LoadBalancers); err != nil {
			return err
		}
		cur.LoadBalancers = svcNilIfEmpty(in.LoadBalancers)
		deploy = true
	}
	if in.ServiceRegistries != nil && !svcSameJSON(in.ServiceRegistries, cur.ServiceRegistries) {
		cur.ServiceRegistries = svcNilIfEmpty(in.ServiceRegistries)
		deploy = true
	}
	if g := in.HealthCheckGracePeriodSeconds; g != nil {
		if *g < 0 {
			return ecs.Errorf(ecs.CodeInvalidParameter, "healthCheckGracePeriodSeconds: must be 0 or more; got %d.", *g)
		}
		cur.HealthCheckGracePeriodSeconds = g
	}
	if in.PropagateTags != "" {
		cur.PropagateTags = in.PropagateTags
	}
	if in.EnableECSManagedTags != nil {
		cur.EnableECSManagedTags = *in.EnableECSManagedTags
	}
	if in.EnableExecuteCommand != nil {
		cur.EnableExecuteCommand = *in.EnableExecuteCommand
	}
	if in.AvailabilityZoneRebalancing != "" {
		cur.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
	}
	if deploy {
		s.startDeployment(c, cur, td)
	}
	return nil
}

func svcSameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	if string(x) == "null" {
		x = []byte("[]")
	}
	if string(y) == "null" {
		y = []byte("[]")
	}
	return string(x) == string(y)
}

func svcNilIfEmpty[T any](v []T) []T {
	if len(v) == 0 {
		return nil
	}
	return v
}

// svcCheckLaunchCompat refuses a definition the launch cannot run, and what
// EXTERNAL instances do not support (awsvpc, load balancers).
func svcCheckLaunchCompat(td *ecs.TaskDefinition, ls launchSpec, lbs []ecs.LoadBalancer) error {
	if ls.launchType == ecs.LaunchTypeEXTERNAL {
		if taskDefNetworkMode(td) == ecs.NetworkModeAwsvpc {
			return ecs.Errorf(ecs.CodeInvalidParameter, "networkMode: EXTERNAL instances do not support awsvpc; register the task definition with bridge, host or none.")
		}
		if len(lbs) > 0 {
			return ecs.Errorf(ecs.CodeInvalidParameter, "loadBalancers: services on EXTERNAL instances cannot use load balancers.")
		}
	}
	if !slices.Contains(td.Compatibilities, ecs.Compatibility(ls.launchType)) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "Task definition does not support launch_type %s.", ls.launchType)
	}
	return nil
}

// svcCheckPublicIP refuses assignPublicIp ENABLED outside Fargate, as ECS does.
func svcCheckPublicIP(fargate bool, nc *ecs.NetworkConfiguration) error {
	if !fargate && nc != nil && nc.AwsvpcConfiguration != nil && nc.AwsvpcConfiguration.AssignPublicIp == ecs.AssignPublicIpENABLED {
		return ecs.Errorf(ecs.CodeInvalidParameter, "Assign public IP is not supported for this launch type.")
	}
	return nil
}
