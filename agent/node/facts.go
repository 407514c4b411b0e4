package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// What the machine registers with: resources, attributes and versions, from
// the machine (/proc/meminfo, cores) and the container runtime (API version,
// log drivers), as the ECS agent advertises them.

// ReservedPorts are the TCP ports ECS reserves on every container instance
// (SSH, the Docker daemon, the agent's introspection and credentials ports).
var ReservedPorts = []int{22, 2375, 2376, 51678, 51679}

// Capacity is the machine's schedulable capacity.
type Capacity struct {
	CPU       int   // CPU units (1024 per core)
	MemoryMiB int64 // MiB available to tasks
}

// DefaultReservedMemoryMiB caps the memory kept back for the host (the OS,
// dockerd, the agent): the smaller of this and 5% of the total.
const DefaultReservedMemoryMiB = 256

// MachineCapacity reads cores and /proc/meminfo. reserveMiB < 0 applies the
// default reserve (min(256 MiB, 5%)).
func MachineCapacity(meminfo string, reserveMiB int64) (Capacity, error) {
	f, err := os.Open(meminfo)
	if err != nil {
		return Capacity{}, fmt.Errorf("machine memory: %w", err)
	}
	defer f.Close()
	total, err := ParseMemTotal(f)
	if err != nil {
		return Capacity{}, fmt.Errorf("machine memory: %s: %w", meminfo, err)
	}
	if reserveMiB < 0 {
		reserveMiB = min(DefaultReservedMemoryMiB, total/20)
	}
	return Capacity{CPU: goruntime.NumCPU() * 1024, MemoryMiB: max(0, total-reserveMiB)}, nil
}

// ParseMemTotal returns MemTotal from /proc/meminfo content, in MiB.
func ParseMemTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0, fmt.Errorf("MemTotal %q is not a size", rest)
		}
		if len(f) > 1 && !strings.EqualFold(f[1], "kB") {
			return 0, fmt.Errorf("MemTotal unit %q, want kB", f[1])
		}
		return kb / 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal line")
}

// Resources are the registration's totalResources.
func Resources(c Capacity, extraPorts ...int) []ecs.Resource {
	ports := slices.Clone(ReservedPorts)
	for _, p := range extraPorts {
		if p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	set := make([]string, len(ports))
	for i, p := range ports {
		set[i] = strconv.Itoa(p)
	}
	return []ecs.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: int32(c.CPU)},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: int32(c.MemoryMiB)},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: set},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
	}
}

// Capability attribute prefixes.
const (
	capLegacy = "com.amazonaws.ecs.capability."
	capECS    = "ecs.capability."
)

// minDockerAPI is the oldest Docker API version ECS capabilities name.
const minDockerAPI = 17

// loggingDrivers are the log drivers ECS task definitions can name.
var loggingDrivers = []string{"json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "logentries", "sumologic", "none"}

// Attributes are what the instance advertises: the standard ecs.* facts,
// capabilities for what ecsd's engine does on this runtime, then the
// operator's custom attributes.
func Attributes(info runtime.Info, az, instanceType string, custom map[string]string) []ecs.Attribute {
	var out []ecs.Attribute
	add := func(name, value string) {
		if i := slices.IndexFunc(out, func(a ecs.Attribute) bool { return a.Name == name }); i >= 0 {
			out[i].Value = value
			return
		}
		out = append(out, ecs.Attribute{Name: name, Value: value})
	}
	add("ecs.os-type", "linux")
	add("ecs.os-family", "LINUX")
	add("ecs.cpu-architecture", Architecture(info.Architecture))
	if az != "" {
		add("ecs.availability-zone", az)
	}
	if instanceType != "" {
		add("ecs.instance-type", instanceType)
	}
	if maxAPI, ok := apiMinor(info.APIVersion); ok {
		for v := minDockerAPI; v <= maxAPI; v++ {
			add(fmt.Sprintf("%sdocker-remote-api.1.%d", capLegacy, v), "")
		}
	}
	for _, d := range loggingDrivers {
		if slices.Contains(info.LogDrivers, d) {
			add(capLegacy+"logging-driver."+d, "")
		}
	}
	for _, c := range []string{
		capLegacy + "privileged-container",
		// Role ARNs are recorded and passed on; images and logs need no
		// credentials on a machine without a cloud.
		capLegacy + "task-iam-role",
		capLegacy + "task-iam-role-network-host",
		capLegacy + "ecr-auth",
		capECS + "execution-role-ecr-pull",
		capECS + "execution-role-awslogs",
		capECS + "task-eni",
		capECS + "container-health-check",
		capECS + "container-ordering",
		capECS + "task-cpu-mem-limit",
		capECS + "docker-plugin.local",
	} {
		add(c, "")
	}
	for _, rt := range info.Runtimes {
		if rt == "runsc" {
			add(capECS+"runtime.runsc", "")
		}
	}
	keys := make([]string, 0, len(custom))
	for k := range custom {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(k, custom[k])
	}
	return out
}

// Architecture maps a runtime's architecture to ecs.cpu-architecture.
func Architecture(a string) string {
	if a == "" {
		a = goruntime.GOARCH
	}
	switch a {
	case "x86_64", "amd64":
		return "x86_64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return a
}

// apiMinor parses "1.41" → 41.
func apiMinor(v string) (int, bool) {
	major, minor, ok := strings.Cut(v, ".")
	if !ok || major != "1" {
		return 0, false
	}
	n, err := strconv.Atoi(minor)
	return n, err == nil
}

// VersionInfo is reported at registration, as the ECS agent does.
func VersionInfo(agentVersion, agentHash string, info runtime.Info) ecs.VersionInfo {
	dv := info.ServerVersion
	if i := strings.IndexAny(dv, "+-"); i > 0 {
		dv = dv[:i] // "20.10.24+dfsg1" → "20.10.24"
	}
	return ecs.VersionInfo{AgentVersion: agentVersion, AgentHash: agentHash, DockerVersion: "DockerVersion: " + dv}
}

// Registration is the whole registration of the machine.
func Registration(cfg *Config, info runtime.Info, c Capacity) agentapi.RegisterRequest {
	host := info.Hostname
	if h, err := os.Hostname(); err == nil && h != "" {
		host = h
	}
	return agentapi.RegisterRequest{
		Hostname:         host,
		TotalResources:   Resources(c, cfg.TMDSPort),
		Attributes:       Attributes(info, cfg.AvailabilityZone, cfg.InstanceType, cfg.Attributes),
		VersionInfo:      VersionInfo(cfg.Version, cfg.Hash, info),
		AvailabilityZone: cfg.AvailabilityZone,
		InstanceType:     cfg.InstanceType,
		Fargate:          cfg.Fargate,
		External:         cfg.External,
		NodeGroup:        cfg.NodeGroup,
		NodeID:           cfg.NodeID,
	}
}
