package docker

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/ecsd/ecsd/agent/runtime"
)

const mib = 1 << 20

// createConfig maps a ContainerSpec onto Docker's three create structures.
// It rejects only what Docker would misread silently; everything else Docker
// validates itself, with messages the engine passes on.
func createConfig(s runtime.ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	if s.Image == "" {
		return nil, nil, nil, fmt.Errorf("spec: image is required")
	}
	cfg := &container.Config{
		Image:      s.Image,
		Env:        s.Env,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Hostname:   s.Hostname,
		Labels:     s.Labels,
	}
	// nil keeps the image's entrypoint/command; an empty non-nil slice clears it.
	if s.Entrypoint != nil {
		cfg.Entrypoint = s.Entrypoint
	}
	if s.Command != nil {
		cfg.Cmd = s.Command
	}
	if s.StopTimeout > 0 {
		secs := ceilSeconds(s.StopTimeout)
		cfg.StopTimeout = &secs
	}
	if h := s.HealthCheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        h.Test,
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	}

	hc := &container.HostConfig{
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadonlyRootfs,
		ExtraHosts:     s.ExtraHosts,
		DNS:            s.DNSServers,
		DNSSearch:      s.DNSSearch,
		VolumesFrom:    s.VolumesFrom,
		Runtime:        s.Runtime,
		NetworkMode:    container.NetworkMode(s.NetworkMode),
	}
	hc.CPUShares = s.CPUShares
	hc.Memory = s.MemoryLimitMiB * mib
	hc.MemoryReservation = s.MemoryReservationMiB * mib
	for _, u := range s.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	if s.Init {
		// Only set when asked: false would override a daemon-wide "init": true.
		t := true
		hc.Init = &t
	}
	if s.LogDriver != "" || len(s.LogOptions) > 0 {
		hc.LogConfig = container.LogConfig{Type: s.LogDriver, Config: s.LogOptions}
	}

	if err := addMounts(cfg, hc, s.Mounts); err != nil {
		return nil, nil, nil, err
	}
	if err := addPorts(cfg, hc, s.PortBindings); err != nil {
		return nil, nil, nil, err
	}

	var nc *network.NetworkingConfig
	if a := s.Network; a != nil {
		if a.Name == "" {
			return nil, nil, nil, fmt.Errorf("spec: network name is required")
		}
		if s.NetworkMode == "" {
			hc.NetworkMode = container.NetworkMode(a.Name)
		} else if s.NetworkMode != a.Name {
			return nil, nil, nil, fmt.Errorf("spec: network mode %q does not match network %q", s.NetworkMode, a.Name)
		}
		ep := &network.EndpointSettings{Aliases: a.Aliases}
		if a.IPv4 != "" {
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a.IPv4}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{a.Name: ep}}
	}
	return cfg, hc, nc, nil
}

// addMounts uses Binds rather than the Mounts API for bind and volume mounts:
// with Binds, Docker creates a missing host directory, as ECS host volumes
// expect; the Mounts API refuses it.
func addMounts(cfg *container.Config, hc *container.HostConfig, mounts []runtime.Mount) error {
	for _, m := range mounts {
		if m.Target == "" || !path.IsAbs(m.Target) {
			return fmt.Errorf("spec: mount target %q must be an absolute path", m.Target)
		}
		mode := ""
		if m.ReadOnly {
			mode = ":ro"
		}
		switch m.Type {
		case runtime.MountBind, "":
			if !path.IsAbs(m.Source) {
				// A relative source would be read as a volume name.
				return fmt.Errorf("spec: bind mount source %q must be an absolute path", m.Source)
			}
			hc.Binds = append(hc.Binds, m.Source+":"+m.Target+mode)
		case runtime.MountVolume:
			if m.Source == "" {
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[m.Target] = struct{}{}
				continue
			}
			if strings.Contains(m.Source, "/") {
				return fmt.Errorf("spec: volume name %q must not contain '/'", m.Source)
			}
			hc.Binds = append(hc.Binds, m.Source+":"+m.Target+mode)
		case runtime.MountTmpfs:
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			opts := ""
			if m.ReadOnly {
				opts = "ro"
			}
			hc.Tmpfs[m.Target] = opts
		default:
			return fmt.Errorf("spec: unknown mount type %q", m.Type)
		}
	}
	return nil
}

// addPorts publishes ports. A host port of 0 becomes "", which makes Docker pick
// one from its ephemeral range; the choice is read back with Inspect.
func addPorts(cfg *container.Config, hc *container.HostConfig, ports []runtime.PortBinding) error {
	if len(ports) == 0 {
		return nil
	}
	cfg.ExposedPorts = nat.PortSet{}
	hc.PortBindings = nat.PortMap{}
	for _, p := range ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return fmt.Errorf("spec: port protocol %q must be tcp or udp", p.Protocol)
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			return fmt.Errorf("spec: port mapping %d:%d out of range", p.HostPort, p.ContainerPort)
		}
		cp, err := nat.NewPort(proto, strconv.Itoa(p.ContainerPort))
		if err != nil {
			return fmt.Errorf("spec: port %d/%s: %w", p.ContainerPort, proto, err)
		}
		hp := ""
		if p.HostPort != 0 {
			hp = strconv.Itoa(p.HostPort)
		}
		cfg.ExposedPorts[cp] = struct{}{}
		hc.PortBindings[cp] = append(hc.PortBindings[cp], nat.PortBinding{HostIP: p.HostIP, HostPort: hp})
	}
	return nil
}

// ceilSeconds rounds up so a sub-second timeout never becomes "kill at once".
func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
