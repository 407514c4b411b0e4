package apiserver

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
)

// RegisterTaskDefinition's validation and normalisation, as ECS does it. Pure:
// a request in, the definition ECS would store (or ECS's error) out; identity
// fields (ARN, revision, status, registration time) are the handler's.
//
// Codes: ECS answers ClientException for nearly every task-definition problem
// and InvalidParameterException for values it cannot parse (task cpu/memory
// strings) and for tags. Messages that ECS is known to send are reproduced
// word for word; the others follow their style and name the container and field.

const (
	taskDefMaxContainers       = 10
	taskDefMaxPlacementConstr  = 10
	taskDefMaxNameLen          = 255
	taskDefMinContainerMemory  = 6 // MiB: Docker 20.10+ refuses less
	taskDefMinEC2TaskCPU       = 128
	taskDefMaxEC2TaskCPU       = 196608
	taskDefMaxTaskMemory       = 1 << 24 // MiB; far above any instance, keeps arithmetic small
	taskDefDefaultHCInterval   = 30
	taskDefDefaultHCTimeout    = 5
	taskDefDefaultHCRetries    = 3
	taskDefMinEphemeralStorage = 21
	taskDefMaxEphemeralStorage = 200
)

// taskDefNameRE is the family, container and volume name rule.
var taskDefNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// taskDefFargateSizes: task cpu units -> the memory (MiB) values Fargate offers.
var taskDefFargateSizes = map[int][]int{
	256:   {512, 1024, 2048},
	512:   taskDefSizeRange(1024, 4096, 1024),
	1024:  taskDefSizeRange(2048, 8192, 1024),
	2048:  taskDefSizeRange(4096, 16384, 1024),
	4096:  taskDefSizeRange(8192, 30720, 1024),
	8192:  taskDefSizeRange(16384, 61440, 4096),
	16384: taskDefSizeRange(32768, 122880, 8192),
}

func taskDefSizeRange(from, to, step int) []int {
	var out []int
	for v := from; v <= to; v += step {
		out = append(out, v)
	}
	return out
}

func tdClientErr(format string, args ...any) error {
	return ecs.Errorf(ecs.CodeClient, format, args...)
}

func tdParamErr(format string, args ...any) error {
	return ecs.Errorf(ecs.CodeInvalidParameter, format, args...)
}

// normalizeTaskDefinition validates in and returns the definition ECS would
// store: task cpu/memory in units/MiB, container defaults filled, port
// mappings completed, compatibilities and requiresAttributes derived.
func normalizeTaskDefinition(in *ecs.RegisterTaskDefinitionRequest) (*ecs.TaskDefinition, error) {
	if err := validateTaskDefFamily(in.Family); err != nil {
		return nil, err
	}
	if len(in.ContainerDefinitions) == 0 {
		return nil, tdClientErr("Container list cannot be empty.")
	}
	if len(in.ContainerDefinitions) > taskDefMaxContainers {
		return nil, tdClientErr("Too many containers: a task definition can have at most %d containers; got %d.", taskDefMaxContainers, len(in.ContainerDefinitions))
	}
	if err := validateTaskDefTags(in.Tags); err != nil {
		return nil, err
	}
	td := &ecs.TaskDefinition{
		Family:                  in.Family,
		TaskRoleArn:             in.TaskRoleArn,
		ExecutionRoleArn:        in.ExecutionRoleArn,
		NetworkMode:             in.NetworkMode,
		IpcMode:                 in.IpcMode,
		PidMode:                 in.PidMode,
		ProxyConfiguration:      in.ProxyConfiguration,
		RuntimePlatform:         in.RuntimePlatform,
		EphemeralStorage:        in.EphemeralStorage,
		EnableFaultInjection:    in.EnableFaultInjection,
		InferenceAccelerators:   in.InferenceAccelerators,
		RequiresCompatibilities: in.RequiresCompatibilities,
	}
	var err error
	var cpu, mem int
	if td.Cpu, cpu, err = parseTaskDefCPU(in.Cpu); err != nil {
		return nil, err
	}
	if td.Memory, mem, err = parseTaskDefMemory(in.Memory); err != nil {
		return nil, err
	}
	if td.Volumes, err = normalizeTaskDefVolumes(in.Volumes); err != nil {
		return nil, err
	}
	if td.PlacementConstraints, err = normalizeTaskDefPlacement(in.PlacementConstraints); err != nil {
		return nil, err
	}
	if es := in.EphemeralStorage; es != nil && (es.SizeInGiB < taskDefMinEphemeralStorage || es.SizeInGiB > taskDefMaxEphemeralStorage) {
		return nil, tdClientErr("Invalid 'ephemeralStorage' setting: sizeInGiB must be between %d and %d; got %d.", taskDefMinEphemeralStorage, taskDefMaxEphemeralStorage, es.SizeInGiB)
	}
	if td.ContainerDefinitions, err = normalizeTaskDefContainers(in.ContainerDefinitions, td, mem); err != nil {
		return nil, err
	}
	if err := checkTaskDefTotals(td.ContainerDefinitions, in.Cpu != "", cpu, in.Memory != "", mem); err != nil {
		return nil, err
	}
	if p := td.ProxyConfiguration; p != nil && !slices.ContainsFunc(td.ContainerDefinitions, func(c ecs.ContainerDefinition) bool { return c.Name == p.ContainerName }) {
		return nil, tdClientErr("Invalid 'proxyConfiguration' setting: containerName '%s' does not name a container in the task definition.", p.ContainerName)
	}
	if td.Compatibilities, err = taskDefCompatibilities(td); err != nil {
		return nil, err
	}
	td.RequiresAttributes = taskDefRequiredAttributes(td)
	return td, nil
}

func validateTaskDefFamily(family string) error {
	switch {
	case family == "":
		return tdClientErr("Family can not be blank.")
	case len(family) > taskDefMaxNameLen:
		return tdClientErr("Family name is too long: up to %d letters, numbers, hyphens and underscores are allowed; got %d characters.", taskDefMaxNameLen, len(family))
	case !taskDefNameRE.MatchString(family):
		return tdClientErr("Family contains invalid characters.")
	}
	return nil
}

func validateTaskDefTags(tags []ecs.Tag) error {
	if len(tags) > 50 {
		return tdParamErr("tags: at most 50 tags are allowed; got %d.", len(tags))
	}
	seen := make(map[string]bool, len(tags))
	for i, t := range tags {
		switch {
		case t.Key == "":
			return tdParamErr("tags[%d].key is required.", i)
		case len([]rune(t.Key)) > 128:
			return tdParamErr("tags[%d].key must be at most 128 characters.", i)
		case len([]rune(t.Value)) > 256:
			return tdParamErr("tags[%d].value must be at most 256 characters.", i)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return tdParamErr("tags[%d].key: %q uses the reserved prefix aws:, which only AWS may use.", i, t.Key)
		case seen[t.Key]:
			return tdParamErr("tags[%d].key: duplicate tag key %q.", i, t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// parseTaskDefCPU accepts CPU units ("1024") or vCPUs ("1 vCPU", "0.25 vcpu")
// and returns the units as ECS stores them. Empty means not set.
func parseTaskDefCPU(s string) (string, int, error) {
	if s == "" {
		return "", 0, nil
	}
	n, ok := parseTaskDefQuantity(s, "vcpu", 1024)
	if !ok {
		return "", 0, tdParamErr("Invalid 'cpu' setting for task: %q is neither CPU units (\"1024\") nor vCPUs (\"1 vCPU\").", s)
	}
	if n < taskDefMinEC2TaskCPU || n > taskDefMaxEC2TaskCPU {
		return "", 0, tdClientErr("Invalid 'cpu' setting for task: %d CPU units is outside the supported range %d to %d.", n, taskDefMinEC2TaskCPU, taskDefMaxEC2TaskCPU)
	}
	return strconv.Itoa(n), n, nil
}

// parseTaskDefMemory accepts MiB ("2048") or GB ("2 GB", "0.5GB") and returns
// MiB as ECS stores them. Empty means not set.
func parseTaskDefMemory(s string) (string, int, error) {
	if s == "" {
		return "", 0, nil
	}
	n, ok := parseTaskDefQuantity(s, "gb", 1024)
	if !ok {
		return "", 0, tdParamErr("Invalid 'memory' setting for task: %q is neither MiB (\"2048\") nor GB (\"2 GB\").", s)
	}
	if n < taskDefMinContainerMemory || n > taskDefMaxTaskMemory {
		return "", 0, tdClientErr("Invalid 'memory' setting for task: %d MiB is outside the supported range %d to %d.", n, taskDefMinContainerMemory, taskDefMaxTaskMemory)
	}
	return strconv.Itoa(n), n, nil
}

// parseTaskDefQuantity parses a plain integer, or a decimal followed by unit
// (case-insensitive, optional space) scaled by factor; the result must be a
// whole number.
func parseTaskDefQuantity(s, unit string, factor float64) (int, bool) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		return n, n >= 0 && n <= math.MaxInt32
	}
	if len(t) <= len(unit) || !strings.EqualFold(t[len(t)-len(unit):], unit) {
		return 0, false
	}
	num := strings.TrimSpace(t[:len(t)-len(unit)])
	if num == "" || strings.ContainsAny(num, "eEinxXpP_") { // plain decimals only: no exponents, hex, inf, nan
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, false
	}
	v := f * factor
	if v != math.Trunc(v) {
		return 0, false
	}
	return int(v), true
}

func normalizeTaskDefVolumes(in []ecs.Volume) ([]ecs.Volume, error) {
	out := make([]ecs.Volume, 0, len(in))
	seen := map[string]bool{}
	for i, v := range in {
		switch {
		case v.Name == "":
			return nil, tdClientErr("Invalid 'volumes' setting: volumes[%d] has no name.", i)
		case len(v.Name) > taskDefMaxNameLen || !taskDefNameRE.MatchString(v.Name):
			return nil, tdClientErr("Invalid 'volumes' setting: volume name '%s' may contain only up to %d letters, numbers, hyphens and underscores.", v.Name, taskDefMaxNameLen)
		case seen[v.Name]:
			return nil, tdClientErr("Invalid 'volumes' setting: volume name '%s' is used more than once.", v.Name)
		}
		seen[v.Name] = true
		kinds := 0
		for _, set := range []bool{v.Host != nil && v.Host.SourcePath != "", v.DockerVolumeConfiguration != nil, v.EfsVolumeConfiguration != nil, v.FsxWindowsFileServerVolumeConfiguration != nil, v.S3filesVolumeConfiguration != nil} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			return nil, tdClientErr("Invalid 'volumes' setting: volume '%s' may have only one of host.sourcePath, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and s3filesVolumeConfiguration.", v.Name)
		}
		if e := v.EfsVolumeConfiguration; e != nil && e.FileSystemId == "" {
			return nil, tdClientErr("Invalid 'volumes' setting: volume '%s' efsVolumeConfiguration.fileSystemId is required.", v.Name)
		}
		// A volume with no configuration is a bind mount on task storage; ECS
		// reports it with an empty host block.
		if kinds == 0 && v.Host == nil {
			v.Host = &ecs.HostVolumeProperties{}
		}
		out = append(out, v)
	}
	return out, nil
}

func normalizeTaskDefPlacement(in []ecs.TaskDefinitionPlacementConstraint) ([]ecs.TaskDefinitionPlacementConstraint, error) {
	if len(in) > taskDefMaxPlacementConstr {
		return nil, tdClientErr("Invalid 'placementConstraints' setting: at most %d constraints are allowed; got %d.", taskDefMaxPlacementConstr, len(in))
	}
	out := make([]ecs.TaskDefinitionPlacementConstraint, 0, len(in))
	for i, p := range in {
		if p.Type == "" {
			p.Type = ecs.TaskDefinitionPlacementConstraintTypeMemberOf
		}
		if strings.TrimSpace(p.Expression) == "" {
			return nil, tdClientErr("Invalid 'placementConstraints' setting: placementConstraints[%d] of type memberOf needs an expression.", i)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkTaskDefTotals applies the task-level limits to the containers.
func checkTaskDefTotals(cs []ecs.ContainerDefinition, hasCPU bool, cpu int, hasMem bool, mem int) error {
	sumCPU, sumRes := 0, 0
	for _, c := range cs {
		sumCPU += int(c.Cpu)
		if hasMem && c.Memory != nil && int(*c.Memory) > mem {
			return tdClientErr("The 'memory' setting for container '%s' is greater than for the task.", c.Name)
		}
		if c.MemoryReservation != nil {
			sumRes += int(*c.MemoryReservation)
		}
	}
	if hasCPU && sumCPU > cpu {
		return tdClientErr("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.")
	}
	if hasMem && sumRes > mem {
		return tdClientErr("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.")
	}
	return nil
}

// taskDefNetworkMode is the mode tasks actually get: ECS leaves networkMode
// unset in the definition when the client did not send one, and runs bridge.
func taskDefNetworkMode(td *ecs.TaskDefinition) ecs.NetworkMode {
	if td.NetworkMode == "" {
		return ecs.NetworkModeBridge
	}
	return td.NetworkMode
}

// taskDefCompatibilities checks requiresCompatibilities and derives the
// compatibilities ECS reports: EC2 always; EXTERNAL unless awsvpc; FARGATE when
// the definition passes every Fargate rule; MANAGED_INSTANCES when requested.
func taskDefCompatibilities(td *ecs.TaskDefinition) ([]ecs.Compatibility, error) {
	fargateProblems := taskDefFargateProblems(td)
	mode := taskDefNetworkMode(td)
	for _, rc := range td.RequiresCompatibilities {
		switch rc {
		case ecs.CompatibilityFARGATE:
			if len(fargateProblems) > 0 {
				return nil, tdClientErr("%s", fargateProblems[0])
			}
		case ecs.CompatibilityEXTERNAL:
			if mode == ecs.NetworkModeAwsvpc {
				return nil, tdClientErr("Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'; use bridge, host or none.")
			}
		}
	}
	var out []ecs.Compatibility
	if mode != ecs.NetworkModeAwsvpc {
		out = append(out, ecs.CompatibilityEXTERNAL)
	}
	out = append(out, ecs.CompatibilityEC2)
	if len(fargateProblems) == 0 {
		out = append(out, ecs.CompatibilityFARGATE)
	}
	if slices.Contains(td.RequiresCompatibilities, ecs.CompatibilityMANAGEDINSTANCES) {
		out = append(out, ecs.CompatibilityMANAGEDINSTANCES)
	}
	return out, nil
}

// taskDefFargateProblems lists, in ECS's order, why the definition cannot run
// on Fargate. Empty or false settings do not count: exported definitions carry
// them and Fargate accepts them.
func taskDefFargateProblems(td *ecs.TaskDefinition) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if taskDefNetworkMode(td) != ecs.NetworkModeAwsvpc {
		add("Fargate only supports network mode \u2018awsvpc\u2019.")
	}
	switch {
	case td.Cpu == "":
		add("Fargate requires that 'cpu' be defined at the task level.")
	case td.Memory == "":
		add("Fargate requires that 'memory' be defined at the task level.")
	default:
		cpu, _ := strconv.Atoi(td.Cpu)
		mem, _ := strconv.Atoi(td.Memory)
		if !slices.Contains(taskDefFargateSizes[cpu], mem) {
			add("No Fargate configuration exists for given values: %s CPU, %s memory. See the Amazon ECS documentation for the valid values.", td.Cpu, td.Memory)
		}
	}
	if td.IpcMode != "" {
		add("Tasks using the Fargate launch type do not support ipcMode.")
	}
	if td.PidMode == ecs.PidModeHost {
		add("Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.")
	}
	if len(td.PlacementConstraints) > 0 {
		add("Tasks using the Fargate launch type do not support placementConstraints.")
	}
	if len(td.InferenceAccelerators) > 0 {
		add("Tasks using the Fargate launch type do not support inferenceAccelerators.")
	}
	for _, v := range td.Volumes {
		switch {
		case v.Host != nil && v.Host.SourcePath != "":
			add("Fargate compatible task definitions do not support sourcePath")
		case v.DockerVolumeConfiguration != nil:
			add("Fargate compatible task definitions do not support dockerVolumeConfiguration (volume '%s').", v.Name)
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			add("Fargate compatible task definitions do not support fsxWindowsFileServerVolumeConfiguration (volume '%s').", v.Name)
		}
	}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		unsupported := func(field string) {
			add("Tasks using the Fargate launch type do not support '%s' (container '%s').", field, c.Name)
		}
		if c.Privileged != nil && *c.Privileged {
			unsupported("privileged")
		}
		if len(c.Links) > 0 {
			unsupported("links")
		}
		if c.DisableNetworking != nil && *c.DisableNetworking {
			unsupported("disableNetworking")
		}
		if len(c.DnsServers) > 0 {
			unsupported("dnsServers")
		}
		if len(c.DnsSearchDomains) > 0 {
			unsupported("dnsSearchDomains")
		}
		if len(c.DockerSecurityOptions) > 0 {
			unsupported("dockerSecurityOptions")
		}
		if len(c.ExtraHosts) > 0 {
			unsupported("extraHosts")
		}
		if slices.ContainsFunc(c.ResourceRequirements, func(r ecs.ResourceRequirement) bool { return r.Type == ecs.ResourceTypeGPU }) {
			unsupported("gpu")
		}
		if lp := c.LinuxParameters; lp != nil {
			if len(lp.Devices) > 0 {
				unsupported("linuxParameters.devices")
			}
			if lp.SharedMemorySize != nil {
				unsupported("linuxParameters.sharedMemorySize")
			}
			if lp.MaxSwap != nil {
				unsupported("linuxParameters.maxSwap")
			}
			if lp.Swappiness != nil {
				unsupported("linuxParameters.swappiness")
			}
			if lp.Capabilities != nil {
				for _, cp := range lp.Capabilities.Add {
					if cp != "SYS_PTRACE" && cp != "CAP_SYS_PTRACE" {
						add("Tasks using the Fargate launch type can only add the SYS_PTRACE kernel capability; container '%s' adds %s.", c.Name, cp)
						break
					}
				}
			}
		}
		if lc := c.LogConfiguration; lc != nil {
			switch lc.LogDriver {
			case ecs.LogDriverAwslogs, ecs.LogDriverSplunk, ecs.LogDriverAwsfirelens:
			default:
				add("Tasks using the Fargate launch type support only the awslogs, splunk and awsfirelens log drivers; container '%s' uses %s.", c.Name, lc.LogDriver)
			}
		}
	}
	return p
}

// normalizeTaskDefContainers validates each container against the task (its
// network mode, volumes and sibling containers) and fills ECS's defaults.
func normalizeTaskDefContainers(in []ecs.ContainerDefinition, td *ecs.TaskDefinition, taskMem int) ([]ecs.ContainerDefinition, error) {
	mode := taskDefNetworkMode(td)
	names := make(map[string]int, len(in))
	for i, c := range in {
		if c.Name == "" {
			return nil, tdClientErr("Container.name should not be null or empty.")
		}
		if len(c.Name) > taskDefMaxNameLen || !taskDefNameRE.MatchString(c.Name) {
			return nil, tdClientErr("Container.name contains invalid characters.")
		}
		if _, dup := names[c.Name]; dup {
			return nil, tdClientErr("Container names must be unique within a Task Definition.")
		}
		names[c.Name] = i
	}
	volumes := make(map[string]bool, len(td.Volumes))
	for _, v := range td.Volumes {
		volumes[v.Name] = true
	}
	fargate := slices.Contains(td.RequiresCompatibilities, ecs.CompatibilityFARGATE)
	hasFirelens := slices.ContainsFunc(in, func(c ecs.ContainerDefinition) bool { return c.FirelensConfiguration != nil })
	out := make([]ecs.ContainerDefinition, len(in))
	essential := false
	for i := range in {
		c := in[i] // a copy; nested slices are rebuilt before they are changed
		if err := normalizeTaskDefContainer(&c, mode, fargate, taskMem, names, volumes, hasFirelens); err != nil {
			return nil, err
		}
		essential = essential || *c.Essential
		out[i] = c
	}
	if !essential {
		return nil, tdClientErr("Task definition must contain at least one essential container.")
	}
	if err := checkTaskDefDependencies(out, names); err != nil {
		return nil, err
	}
	return out, nil
}

func normalizeTaskDefContainer(c *ecs.ContainerDefinition, mode ecs.NetworkMode, fargate bool, taskMem int, names map[string]int, volumes map[string]bool, hasFirelens bool) error {
	if strings.TrimSpace(c.Image) == "" {
		return tdClientErr("Container.image should not be null or empty.")
	}
	if c.Essential == nil {
		c.Essential = new(bool)
		*c.Essential = true
	}
	if c.Cpu < 0 {
		return tdClientErr("Invalid 'cpu' setting for container '%s': it must not be negative.", c.Name)
	}
	if err := checkTaskDefContainerMemory(c, taskMem, fargate); err != nil {
		return err
	}
	if c.Hostname != "" && mode == ecs.NetworkModeAwsvpc {
		return tdClientErr("hostname is not supported on container when networkMode=awsvpc.")
	}
	if len(c.Links) > 0 {
		if mode != ecs.NetworkModeBridge {
			return tdClientErr("links are not supported on container when networkMode=%s.", mode)
		}
		for _, l := range c.Links {
			target, _, _ := strings.Cut(l, ":")
			if _, ok := names[target]; !ok || target == c.Name {
				return tdClientErr("Invalid 'links' setting for container '%s': '%s' does not name another container in the task definition.", c.Name, l)
			}
		}
	}
	var err error
	if c.PortMappings, err = normalizeTaskDefPorts(c.Name, c.PortMappings, mode); err != nil {
		return err
	}
	if c.HealthCheck, err = normalizeTaskDefHealthCheck(c.Name, c.HealthCheck); err != nil {
		return err
	}
	if err := checkTaskDefLogConfig(c, hasFirelens); err != nil {
		return err
	}
	for _, e := range c.Environment {
		if e.Name == "" {
			return tdClientErr("Invalid 'environment' setting for container '%s': an environment variable has no name.", c.Name)
		}
	}
	for _, m := range c.MountPoints {
		if m.SourceVolume == "" || m.ContainerPath == "" {
			return tdClientErr("Invalid 'mountPoints' setting for container '%s': sourceVolume and containerPath are required.", c.Name)
		}
		if !volumes[m.SourceVolume] {
			return tdClientErr("Invalid 'mountPoints' setting for container '%s': sourceVolume '%s' is not a volume of the task definition.", c.Name, m.SourceVolume)
		}
	}
	for _, v := range c.VolumesFrom {
		if _, ok := names[v.SourceContainer]; !ok || v.SourceContainer == c.Name {
			return tdClientErr("Invalid 'volumesFrom' setting for container '%s': sourceContainer '%s' does not name another container in the task definition.", c.Name, v.SourceContainer)
		}
	}
	for _, u := range c.Ulimits {
		if u.SoftLimit < 0 || u.HardLimit < 0 || u.SoftLimit > u.HardLimit {
			return tdClientErr("Invalid 'ulimits' setting for container '%s': ulimit %s needs 0 <= softLimit <= hardLimit; got %d and %d.", c.Name, u.Name, u.SoftLimit, u.HardLimit)
		}
	}
	if c.StartTimeout != nil && *c.StartTimeout < 0 {
		return tdClientErr("Invalid 'startTimeout' setting for container '%s': it must not be negative.", c.Name)
	}
	if c.StopTimeout != nil && *c.StopTimeout < 0 {
		return tdClientErr("Invalid 'stopTimeout' setting for container '%s': it must not be negative.", c.Name)
	}
	if lp := c.LinuxParameters; lp != nil {
		if lp.Swappiness != nil && (*lp.Swappiness < 0 || *lp.Swappiness > 100) {
			return tdClientErr("Invalid 'linuxParameters.swappiness' setting for container '%s': it must be between 0 and 100.", c.Name)
		}
		if lp.MaxSwap != nil && *lp.MaxSwap < 0 {
			return tdClientErr("Invalid 'linuxParameters.maxSwap' setting for container '%s': it must not be negative.", c.Name)
		}
		if lp.SharedMemorySize != nil && *lp.SharedMemorySize <= 0 {
			return tdClientErr("Invalid 'linuxParameters.sharedMemorySize' setting for container '%s': it must be positive.", c.Name)
		}
		for _, t := range lp.Tmpfs {
			if t.Size <= 0 {
				return tdClientErr("Invalid 'linuxParameters.tmpfs' setting for container '%s': size of %s must be positive.", c.Name, t.ContainerPath)
			}
		}
	}
	for _, r := range c.ResourceRequirements {
		if r.Type == ecs.ResourceTypeGPU {
			if n, err := strconv.Atoi(r.Value); err != nil || n < 1 {
				return tdClientErr("Invalid 'resourceRequirements' setting for container '%s': the GPU value must be a positive whole number; got %q.", c.Name, r.Value)
			}
		}
	}
	// ECS answers with these lists present even when empty.
	c.Environment = taskDefNonNil(c.Environment)
	c.MountPoints = taskDefNonNil(c.MountPoints)
	c.VolumesFrom = taskDefNonNil(c.VolumesFrom)
	c.SystemControls = taskDefNonNil(c.SystemControls)
	return nil
}

func taskDefNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// checkTaskDefContainerMemory: without task memory every container needs a hard
// or soft limit; the hard limit may not be below the soft one or Docker's floor.
func checkTaskDefContainerMemory(c *ecs.ContainerDefinition, taskMem int, fargate bool) error {
	// A Fargate definition without task memory gets Fargate's own complaint.
	if taskMem == 0 && !fargate && c.Memory == nil && c.MemoryReservation == nil {
		return tdClientErr("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", c.Name)
	}
	if c.Memory != nil && *c.Memory < taskDefMinContainerMemory {
		return tdClientErr("Invalid 'memory' setting for container '%s'. The minimum is %d MiB; got %d.", c.Name, taskDefMinContainerMemory, *c.Memory)
	}
	if c.MemoryReservation != nil && *c.MemoryReservation < 1 {
		return tdClientErr("Invalid 'memoryReservation' setting for container '%s'. It must be a positive number of MiB; got %d.", c.Name, *c.MemoryReservation)
	}
	if c.Memory != nil && c.MemoryReservation != nil && *c.Memory < *c.MemoryReservation {
		return tdClientErr("Invalid 'memory' setting for container '%s'. 'memory' (%d MiB) must be greater than or equal to 'memoryReservation' (%d MiB).", c.Name, *c.Memory, *c.MemoryReservation)
	}
	return nil
}

// normalizeTaskDefPorts completes port mappings the way ECS reports them:
// protocol tcp by default; in awsvpc and host mode the host port is the
// container port; in bridge mode an omitted host port is 0 (dynamic).
func normalizeTaskDefPorts(name string, in []ecs.PortMapping, mode ecs.NetworkMode) ([]ecs.PortMapping, error) {
	if len(in) > 0 && mode == ecs.NetworkModeNone {
		return nil, tdClientErr("Port mappings are not supported on container '%s' when networkMode=none.", name)
	}
	out := make([]ecs.PortMapping, 0, len(in))
	type portKey struct {
		port  int32
		proto ecs.TransportProtocol
	}
	seen := map[portKey]bool{}
	names := map[string]bool{}
	for _, pm := range in {
		if pm.Protocol == "" {
			pm.Protocol = ecs.TransportProtocolTcp
		}
		if pm.Name != "" {
			if names[pm.Name] {
				return nil, tdClientErr("Invalid 'portMappings' setting for container '%s': port mapping name '%s' is used more than once.", name, pm.Name)
			}
			names[pm.Name] = true
		}
		if pm.ContainerPortRange != "" {
			if err := checkTaskDefPortRange(name, pm, mode); err != nil {
				return nil, err
			}
			out = append(out, pm)
			continue
		}
		if pm.ContainerPort == nil || *pm.ContainerPort < 1 || *pm.ContainerPort > 65535 {
			return nil, tdClientErr("Invalid 'containerPort' setting for container '%s'.", name)
		}
		cp := *pm.ContainerPort
		switch mode {
		case ecs.NetworkModeAwsvpc, ecs.NetworkModeHost:
			if pm.HostPort != nil && *pm.HostPort != cp {
				return nil, tdClientErr("When networkMode=%s, the host ports and container ports in port mappings must match.", mode)
			}
			pm.HostPort = new(int32)
			*pm.HostPort = cp
		default:
			if pm.HostPort == nil {
				pm.HostPort = new(int32)
			}
			if *pm.HostPort < 0 || *pm.HostPort > 65535 {
				return nil, tdClientErr("Invalid 'hostPort' setting for container '%s'.", name)
			}
		}
		k := portKey{cp, pm.Protocol}
		if seen[k] {
			return nil, tdClientErr("Invalid 'portMappings' setting for container '%s': container port %d/%s is mapped more than once.", name, cp, pm.Protocol)
		}
		seen[k] = true
		out = append(out, pm)
	}
	return out, nil
}

func checkTaskDefPortRange(name string, pm ecs.PortMapping, mode ecs.NetworkMode) error {
	if pm.ContainerPort != nil || pm.HostPort != nil {
		return tdClientErr("Invalid 'portMappings' setting for container '%s': containerPortRange cannot be combined with containerPort or hostPort.", name)
	}
	if mode != ecs.NetworkModeAwsvpc && mode != ecs.NetworkModeBridge {
		return tdClientErr("Invalid 'portMappings' setting for container '%s': containerPortRange needs networkMode awsvpc or bridge.", name)
	}
	lo, hi, ok := strings.Cut(pm.ContainerPortRange, "-")
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if !ok || errA != nil || errB != nil || a < 1 || b > 65535 || a >= b {
		return tdClientErr("Invalid 'containerPortRange' setting for container '%s': %q is not a range like \"8000-8100\" within 1-65535.", name, pm.ContainerPortRange)
	}
	return nil
}

// normalizeTaskDefHealthCheck checks ECS's bounds and fills the defaults ECS
// reports (interval 30, timeout 5, retries 3).
func normalizeTaskDefHealthCheck(name string, hc *ecs.HealthCheck) (*ecs.HealthCheck, error) {
	if hc == nil {
		return nil, nil
	}
	h := *hc
	if len(h.Command) < 2 || (h.Command[0] != "CMD" && h.Command[0] != "CMD-SHELL") {
		return nil, tdClientErr("Invalid 'healthCheck' setting for container '%s': command must start with CMD or CMD-SHELL followed by the command to run.", name)
	}
	fill := func(field string, p **int32, def, lo, hi int32) error {
		if *p == nil {
			if def == 0 {
				return nil
			}
			*p = new(int32)
			**p = def
			return nil
		}
		if **p < lo || **p > hi {
			return tdClientErr("Invalid 'healthCheck' setting for container '%s': %s must be between %d and %d; got %d.", name, field, lo, hi, **p)
		}
		return nil
	}
	if err := fill("interval", &h.Interval, taskDefDefaultHCInterval, 5, 300); err != nil {
		return nil, err
	}
	if err := fill("timeout", &h.Timeout, taskDefDefaultHCTimeout, 2, 120); err != nil {
		return nil, err
	}
	if err := fill("retries", &h.Retries, taskDefDefaultHCRetries, 1, 10); err != nil {
		return nil, err
	}
	if err := fill("startPeriod", &h.StartPeriod, 0, 0, 300); err != nil {
		return nil, err
	}
	return &h, nil
}

func checkTaskDefLogConfig(c *ecs.ContainerDefinition, hasFirelens bool) error {
	lc := c.LogConfiguration
	if lc == nil {
		return nil
	}
	switch lc.LogDriver {
	case ecs.LogDriverAwslogs:
		var missing []string
		for _, opt := range []string{"awslogs-region", "awslogs-group"} {
			if lc.Options[opt] == "" {
				missing = append(missing, opt)
			}
		}
		if len(missing) > 0 {
			return tdClientErr("Log driver awslogs requires options: %s", strings.Join(missing, ", "))
		}
	case ecs.LogDriverAwsfirelens:
		if !hasFirelens {
			return tdClientErr("Container '%s' uses the awsfirelens log driver, but no container of the task definition has a firelensConfiguration.", c.Name)
		}
	}
	return nil
}

// checkTaskDefDependencies: dependsOn must name another container, HEALTHY
// needs a health check there, COMPLETE/SUCCESS may not wait on an essential
// container, and the dependencies may not form a cycle.
func checkTaskDefDependencies(cs []ecs.ContainerDefinition, names map[string]int) error {
	for _, c := range cs {
		for _, d := range c.DependsOn {
			j, ok := names[d.ContainerName]
			if !ok {
				return tdClientErr("Invalid 'dependsOn' setting for container '%s': '%s' does not name a container in the task definition.", c.Name, d.ContainerName)
			}
			if d.ContainerName == c.Name {
				return tdClientErr("Invalid 'dependsOn' setting for container '%s': a container cannot depend on itself.", c.Name)
			}
			target := &cs[j]
			switch d.Condition {
			case ecs.ContainerConditionHEALTHY:
				if target.HealthCheck == nil {
					return tdClientErr("Invalid 'dependsOn' setting for container '%s': condition HEALTHY needs a healthCheck on container '%s'.", c.Name, target.Name)
				}
			case ecs.ContainerConditionCOMPLETE, ecs.ContainerConditionSUCCESS:
				if *target.Essential {
					return tdClientErr("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container")
				}
			}
		}
	}
	// Depth-first search for a cycle: 1 = on the current path, 2 = done.
	state := make([]int, len(cs))
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		for _, d := range cs[i].DependsOn {
			j := names[d.ContainerName]
			if state[j] == 1 || (state[j] == 0 && visit(j)) {
				return true
			}
		}
		state[i] = 2
		return false
	}
	for i := range cs {
		if state[i] == 0 && visit(i) {
			return tdClientErr("Invalid 'dependsOn' setting: the container dependencies of the task definition form a cycle through container '%s'.", cs[i].Name)
		}
	}
	return nil
}
