package apiserver

import (
	"slices"
	"strconv"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/capacity"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/taskbuild"
)

// Where a RunTask or CreateService call runs its tasks: a launch type, or a
// capacity provider strategy — the call's, else the cluster's default.

// Fargate's ephemeral storage bounds (GiB); the platform version LATEST
// resolves to and the default storage are taskbuild's.
const (
	fargateMinStorage = 20
	fargateMaxStorage = 200
)

// fargatePlatformVersions are the Linux platform versions a call may name.
var fargatePlatformVersions = []string{"LATEST", "1.4.0", "1.3.0"}

// launchSpec is a resolved launch: a launch type, or a validated strategy
// (whose launch type is FARGATE for Fargate providers, EC2 otherwise).
type launchSpec struct {
	launchType ecs.LaunchType
	strategy   []capacity.Item
}

// fargate reports whether the launch runs on the Fargate pool.
func (ls launchSpec) fargate() bool { return ls.launchType == ecs.LaunchTypeFARGATE }

// targets divides n copies over the launch's targets (current: copies each
// provider already holds, for a service).
func (ls launchSpec) targets(current map[string]int, n int) []planner.TargetCount {
	return planner.SplitTargets(ls.launchType, ls.strategy, current, n)
}

// resolveLaunchSpec applies ECS's rules: a launch type and a strategy are
// mutually exclusive; with neither, the cluster's default strategy applies,
// and without one, EC2. A strategy must be valid on its own and use only
// providers associated with the cluster that are ACTIVE.
func resolveLaunchSpec(snap *cache.Snapshot, scope resource.Scope, cluster *resource.Cluster, lt ecs.LaunchType, items []ecs.CapacityProviderStrategyItem) (launchSpec, error) {
	field := "capacityProviderStrategy"
	switch {
	case lt != "" && len(items) > 0:
		return launchSpec{}, ecs.Errorf(ecs.CodeInvalidParameter, "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	case lt != "":
		switch lt {
		case ecs.LaunchTypeEC2, ecs.LaunchTypeEXTERNAL, ecs.LaunchTypeFARGATE:
			return launchSpec{launchType: lt}, nil
		}
		return launchSpec{}, ecs.Errorf(ecs.CodeUnsupportedFeature, "launchType: ecsd runs EC2, FARGATE and EXTERNAL tasks, not %s.", lt)
	case len(items) == 0 && len(cluster.DefaultCapacityProviderStrategy) == 0:
		return launchSpec{launchType: ecs.LaunchTypeEC2}, nil
	case len(items) == 0:
		items, field = cluster.DefaultCapacityProviderStrategy, "defaultCapacityProviderStrategy"
	}
	strategy := capacity.FromWire(items)
	if err := capacity.Validate(field, strategy); err != nil {
		return launchSpec{}, err
	}
	for i, it := range strategy {
		p := field + "[" + strconv.Itoa(i) + "].capacityProvider"
		if !slices.Contains(cluster.CapacityProviders, it.Provider) {
			return launchSpec{}, ecs.Errorf(ecs.CodeInvalidParameter, "%s: The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster (%s). Associate it with put-cluster-capacity-providers first.", p, it.Provider)
		}
		if resource.IsFargateProvider(it.Provider) {
			continue
		}
		cp, _ := Peek[resource.CapacityProvider](snap, scope.CapacityProviderKey(it.Provider))
		if cp == nil || cp.Status != ecs.CapacityProviderStatusACTIVE {
			return launchSpec{}, ecs.Errorf(ecs.CodeInvalidParameter, "%s: The capacity provider %s is not ACTIVE.", p, it.Provider)
		}
	}
	ls := launchSpec{launchType: ecs.LaunchTypeEC2, strategy: strategy}
	if resource.IsFargateProvider(strategy[0].Provider) {
		ls.launchType = ecs.LaunchTypeFARGATE
	}
	return ls, nil
}

// resolvePlatformVersion checks a call's platformVersion: Fargate only, one
// of the versions offered, LATEST (or none) meaning the current one.
func resolvePlatformVersion(ls launchSpec, pv string) (string, error) {
	if !ls.fargate() {
		if pv != "" {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "platformVersion: only supported for tasks on Fargate; this launch uses %s.", ls.launchType)
		}
		return "", nil
	}
	switch {
	case pv == "" || pv == "LATEST":
		return taskbuild.FargatePlatformVersion, nil
	case slices.Contains(fargatePlatformVersions, pv):
		return pv, nil
	}
	return "", ecs.Errorf(ecs.CodeInvalidParameter, "platformVersion: %s is not a valid Fargate platform version for Linux; use LATEST, 1.4.0 or 1.3.0.", pv)
}

// checkFargateSize refuses a task size (after overrides) that is not one of
// Fargate's cpu/memory pairs.
func checkFargateSize(cpu, mem string) error {
	c, errC := strconv.Atoi(cpu)
	m, errM := strconv.Atoi(mem)
	if errC != nil || errM != nil || !slices.Contains(taskDefFargateSizes[c], m) {
		return ecs.Errorf(ecs.CodeInvalidParameter, "No Fargate configuration exists for given values: %s CPU, %s memory.", cpu, mem)
	}
	return nil
}

// fargateStorage is a Fargate task's ephemeral storage: the call's override,
// else the definition's, else the default.
func fargateStorage(def *ecs.TaskDefinition, o *ecs.TaskOverride) (*ecs.EphemeralStorage, error) {
	if o != nil && o.EphemeralStorage != nil {
		n := o.EphemeralStorage.SizeInGiB
		if n < fargateMinStorage || n > fargateMaxStorage {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "overrides.ephemeralStorage.sizeInGiB: must be between %d and %d; got %d.", fargateMinStorage, fargateMaxStorage, n)
		}
		return &ecs.EphemeralStorage{SizeInGiB: n}, nil
	}
	return taskbuild.FargateStorage(def), nil
}

// errNoFargatePool is the answer when no agent serves the Fargate pool.
func errNoFargatePool() error {
	return ecs.Errorf(ecs.CodeInvalidParameter, "No Fargate capacity: no agent has joined the managed Fargate pool. Start one with `ecsd agent --fargate` (ecsd dev starts one).")
}
