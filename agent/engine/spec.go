package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/api/ecs"
)

// minimumCPUShares is what the ECS agent gives containers with cpu 0 or 1:
// Docker's own minimum.
const minimumCPUShares = 2

// ECS's health check defaults.
const (
	healthInterval = 30 * time.Second
	healthTimeout  = 5 * time.Second
	healthRetries  = 3
)

// effectiveDefinition applies a container override: command, cpu, memory and
// memory reservation replace; environment variables are added after the
// definition's, so an override of the same name wins.
func effectiveDefinition(def ecs.ContainerDefinition, o *ecs.ContainerOverride) ecs.ContainerDefinition {
	if o == nil {
		return def
	}
	if o.Command != nil {
		def.Command = o.Command
	}
	if o.Cpu != nil {
		def.Cpu = *o.Cpu
	}
	if o.Memory != nil {
		def.Memory = o.Memory
	}
	if o.MemoryReservation != nil {
		def.MemoryReservation = o.MemoryReservation
	}
	if len(o.Environment) > 0 {
		env := make([]ecs.KeyValuePair, 0, len(def.Environment)+len(o.Environment))
		env = append(env, def.Environment...)
		def.Environment = append(env, o.Environment...)
	}
	return def
}

// overrideFor finds the override of container name.
func overrideFor(o *ecs.TaskOverride, name string) *ecs.ContainerOverride {
	if o == nil {
		return nil
	}
	for i := range o.ContainerOverrides {
		if o.ContainerOverrides[i].Name == name {
			return &o.ContainerOverrides[i]
		}
	}
	return nil
}

// specContext is what building one container's spec needs from its task.
type specContext struct {
	taskARN     string
	taskID      string
	cluster     string // name
	clusterARN  string
	fargate     bool   // a FARGATE task (on the Fargate pool)
	runtime     string // OCI runtime; "" = the daemon's default
	family      string
	revision    int32
	instanceARN string
	region      string
	networkMode string // bridge, host, none, awsvpc
	pauseID     string // awsvpc
	attachment  string // awsvpc attachment id
	volumes     []ecs.Volume
	idsByName   map[string]string // Docker ids of the task's created containers, for volumesFrom
	tmdsBase    string            // "" = no metadata endpoint
	// awslogsEndpoint is the agent's endpoint for the awslogs log driver
	// ("" = none: awslogs containers log to json-file; logging.go).
	awslogsEndpoint string
}

// taskVolumeName is the Docker volume that backs a task-scoped volume.
func taskVolumeName(taskID, volume string) string {
	var b strings.Builder
	for _, r := range volume {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	return "ecsd-" + taskID + "-" + b.String()
}

// isTaskScoped reports whether v is backed by a volume that lives and dies
// with the task.
func isTaskScoped(v ecs.Volume) bool {
	if v.Host != nil && v.Host.SourcePath != "" {
		return false
	}
	if d := v.DockerVolumeConfiguration; d != nil && d.Scope == ecs.ScopeShared {
		return false
	}
	return v.EfsVolumeConfiguration == nil && v.FsxWindowsFileServerVolumeConfiguration == nil
}

// buildSpec maps one container of a task onto a runtime spec, as the ECS
// agent maps a container definition onto Docker's create call.
func buildSpec(sc specContext, c *container) (runtime.ContainerSpec, error) {
	d := c.def
	spec := runtime.ContainerSpec{
		Name:           c.dockerName,
		Image:          d.Image,
		Entrypoint:     d.EntryPoint,
		Command:        d.Command,
		WorkingDir:     d.WorkingDirectory,
		User:           d.User,
		Env:            environment(sc, c),
		Labels:         containerLabels(sc, c),
		CPUShares:      int64(d.Cpu),
		ReadonlyRootfs: d.ReadonlyRootFilesystem != nil && *d.ReadonlyRootFilesystem,
		Privileged:     d.Privileged != nil && *d.Privileged,
		StopTimeout:    c.stopAfter,
		HealthCheck:    healthCheck(d.HealthCheck),
		Runtime:        sc.runtime,
	}
	if spec.CPUShares < minimumCPUShares {
		spec.CPUShares = minimumCPUShares
	}
	if d.Memory != nil {
		spec.MemoryLimitMiB = int64(*d.Memory)
	}
	if d.MemoryReservation != nil {
		spec.MemoryReservationMiB = int64(*d.MemoryReservation)
	}
	for _, u := range d.Ulimits {
		spec.Ulimits = append(spec.Ulimits, runtime.Ulimit{Name: string(u.Name), Soft: int64(u.SoftLimit), Hard: int64(u.HardLimit)})
	}
	if lp := d.LinuxParameters; lp != nil {
		spec.Init = lp.InitProcessEnabled != nil && *lp.InitProcessEnabled
		if caps := lp.Capabilities; caps != nil {
			spec.CapAdd, spec.CapDrop = caps.Add, caps.Drop
		}
		for _, tm := range lp.Tmpfs {
			spec.Mounts = append(spec.Mounts, runtime.Mount{Type: runtime.MountTmpfs, Target: tm.ContainerPath})
		}
	}
	spec.LogDriver, spec.LogOptions, _ = logDriver(d.LogConfiguration, sc.awslogsEndpoint, c.name, sc.taskID)

	switch sc.networkMode {
	case "awsvpc":
		// Hostname, DNS and extra hosts belong to the network namespace, which
		// is the pause container's; Docker refuses them here.
		spec.NetworkMode = "container:" + sc.pauseID
	case "host", "none":
		spec.NetworkMode = sc.networkMode
		spec.Hostname = d.Hostname
		addDNS(&spec, d)
	default:
		spec.NetworkMode = "bridge"
		if d.DisableNetworking != nil && *d.DisableNetworking {
			spec.NetworkMode = "none"
		}
		spec.Hostname = d.Hostname
		addDNS(&spec, d)
		ports, err := portBindings(d.PortMappings)
		if err != nil {
			return spec, err
		}
		spec.PortBindings = ports
	}

	mounts, err := mounts(sc, d)
	if err != nil {
		return spec, err
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	for _, vf := range d.VolumesFrom {
		id := sc.idsByName[vf.SourceContainer]
		if id == "" {
			return spec, fmt.Errorf("volumesFrom: container %q of the task has not been created", vf.SourceContainer)
		}
		if vf.ReadOnly != nil && *vf.ReadOnly {
			id += ":ro"
		}
		spec.VolumesFrom = append(spec.VolumesFrom, id)
	}
	return spec, nil
}

func addDNS(spec *runtime.ContainerSpec, d ecs.ContainerDefinition) {
	for _, h := range d.ExtraHosts {
		spec.ExtraHosts = append(spec.ExtraHosts, h.Hostname+":"+h.IpAddress)
	}
	spec.DNSServers = d.DnsServers
	spec.DNSSearch = d.DnsSearchDomains
}

// environment is the container's variables: ECS's own first, then the
// definition's, then the override's; a later one of the same name wins, in
// the position of the first.
func environment(sc specContext, c *container) []string {
	var env orderedEnv
	if sc.tmdsBase != "" && c.token != "" {
		env.set("ECS_CONTAINER_METADATA_URI", sc.tmdsBase+"/v3/"+c.token)
		env.set("ECS_CONTAINER_METADATA_URI_V4", sc.tmdsBase+"/v4/"+c.token)
		env.set("ECS_AGENT_URI", sc.tmdsBase+"/api/"+c.token)
	}
	if sc.fargate {
		env.set("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE")
	} else {
		env.set("AWS_EXECUTION_ENV", "AWS_ECS_EC2")
	}
	if sc.region != "" {
		env.set("AWS_REGION", sc.region)
		env.set("AWS_DEFAULT_REGION", sc.region)
	}
	for _, kv := range c.def.Environment {
		if kv.Name != "" {
			env.set(kv.Name, kv.Value)
		}
	}
	return env.list()
}

type orderedEnv struct {
	names []string
	vals  map[string]string
}

func (e *orderedEnv) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *orderedEnv) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// containerLabels are the definition's dockerLabels plus the ones ECS and
// ecsd set (which win).
func containerLabels(sc specContext, c *container) map[string]string {
	l := make(map[string]string, len(c.def.DockerLabels)+12)
	for k, v := range c.def.DockerLabels {
		l[k] = v
	}
	l[LabelTaskARN] = sc.taskARN
	l[LabelContainer] = c.name
	l[LabelFamily] = sc.family
	l[LabelRevision] = strconv.Itoa(int(sc.revision))
	l[LabelCluster] = sc.cluster
	if sc.fargate && sc.clusterARN != "" {
		l[LabelCluster] = sc.clusterARN // as Fargate labels its containers
	}
	l[LabelManaged] = "true"
	l[LabelInstance] = sc.instanceARN
	l[labelKind] = kindContainer
	l[labelToken] = c.token
	l[labelEssential] = strconv.FormatBool(c.essential)
	l[labelStopTimeout] = secondsLabel(c.stopAfter)
	if sc.pauseID != "" {
		l[labelPauseID] = sc.pauseID
		l[labelAttachment] = sc.attachment
	}
	return l
}

func healthCheck(h *ecs.HealthCheck) *runtime.HealthCheck {
	if h == nil || len(h.Command) == 0 {
		return nil
	}
	hc := &runtime.HealthCheck{Test: h.Command, Interval: healthInterval, Timeout: healthTimeout, Retries: healthRetries}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval) * time.Second
	}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout) * time.Second
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod) * time.Second
	}
	return hc
}

// portBindings publishes bridge-mode port mappings; a missing or zero host
// port is dynamic. A container port range gets one dynamic host port each.
func portBindings(pms []ecs.PortMapping) ([]runtime.PortBinding, error) {
	var out []runtime.PortBinding
	for _, pm := range pms {
		proto := string(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if pm.ContainerPort == nil || *pm.ContainerPort == 0 {
			lo, hi, err := parseRange(pm.ContainerPortRange)
			if err != nil {
				return nil, err
			}
			for p := lo; p <= hi; p++ {
				out = append(out, runtime.PortBinding{ContainerPort: p, Protocol: proto})
			}
			continue
		}
		b := runtime.PortBinding{ContainerPort: int(*pm.ContainerPort), Protocol: proto}
		if pm.HostPort != nil {
			b.HostPort = int(*pm.HostPort)
		}
		out = append(out, b)
	}
	return out, nil
}

func parseRange(r string) (int, int, error) {
	a, b, ok := strings.Cut(r, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("portMappings: containerPortRange %q is not a port range", r)
	}
	return lo, hi, nil
}

// mounts resolves the container's mountPoints against the task's volumes.
func mounts(sc specContext, d ecs.ContainerDefinition) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for _, mp := range d.MountPoints {
		var vol *ecs.Volume
		for i := range sc.volumes {
			if sc.volumes[i].Name == mp.SourceVolume {
				vol = &sc.volumes[i]
				break
			}
		}
		if vol == nil {
			return nil, fmt.Errorf("mountPoints: volume %q is not defined in the task definition", mp.SourceVolume)
		}
		m := runtime.Mount{Target: mp.ContainerPath, ReadOnly: mp.ReadOnly != nil && *mp.ReadOnly}
		switch {
		case vol.Host != nil && vol.Host.SourcePath != "":
			m.Type, m.Source = runtime.MountBind, vol.Host.SourcePath
		case vol.EfsVolumeConfiguration != nil || vol.FsxWindowsFileServerVolumeConfiguration != nil ||
			vol.S3filesVolumeConfiguration != nil:
			return nil, fmt.Errorf("volume %q: only host and Docker volumes are supported", vol.Name)
		case vol.DockerVolumeConfiguration != nil && vol.DockerVolumeConfiguration.Scope == ecs.ScopeShared:
			m.Type, m.Source = runtime.MountVolume, vol.Name
		default:
			m.Type, m.Source = runtime.MountVolume, taskVolumeName(sc.taskID, vol.Name)
		}
		out = append(out, m)
	}
	return out, nil
}
