package docker

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/ecsd/ecsd/agent/runtime"
)

// stateFromInspect maps a full inspect answer.
func stateFromInspect(in container.InspectResponse) runtime.ContainerState {
	var st runtime.ContainerState
	if b := in.ContainerJSONBase; b != nil {
		st.ID = b.ID
		st.Name = strings.TrimPrefix(b.Name, "/")
		st.ImageID = b.Image
		st.Created = parseTime(b.Created)
		if b.HostConfig != nil {
			st.NetworkMode = string(b.HostConfig.NetworkMode)
		}
		if s := b.State; s != nil {
			st.Status = s.Status
			st.Running = s.Running
			st.ExitCode = s.ExitCode
			st.OOMKilled = s.OOMKilled
			st.Error = s.Error
			st.Pid = s.Pid
			st.StartedAt = parseTime(s.StartedAt)
			st.FinishedAt = parseTime(s.FinishedAt)
			if h := s.Health; h != nil {
				st.Health = string(h.Status)
				if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
					st.HealthOutput = strings.TrimSpace(h.Log[n-1].Output)
				}
			}
		}
	}
	if c := in.Config; c != nil {
		st.Image = c.Image
		st.Labels = c.Labels
	}
	if ns := in.NetworkSettings; ns != nil {
		st.Ports = portsFromMap(ns.Ports)
		st.Networks = networksFrom(ns.Networks)
	}
	return st
}

// stateFromSummary maps a list entry; it lacks exit code, times and health.
func stateFromSummary(s container.Summary) runtime.ContainerState {
	st := runtime.ContainerState{
		ID:          s.ID,
		Image:       s.Image,
		ImageID:     s.ImageID,
		Labels:      s.Labels,
		Status:      s.State,
		Running:     s.State == container.StateRunning,
		Created:     time.Unix(s.Created, 0),
		NetworkMode: s.HostConfig.NetworkMode,
	}
	if len(s.Names) > 0 {
		st.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	for _, p := range s.Ports {
		if p.PublicPort == 0 {
			continue // exposed but not published
		}
		st.Ports = append(st.Ports, runtime.PortBinding{
			ContainerPort: int(p.PrivatePort),
			HostPort:      int(p.PublicPort),
			Protocol:      p.Type,
			HostIP:        p.IP,
		})
	}
	sortPorts(st.Ports)
	if s.NetworkSettings != nil {
		st.Networks = networksFrom(s.NetworkSettings.Networks)
	}
	return st
}

// portsFromMap flattens Docker's port map into the actual host bindings.
// Docker 20.10 binds both 0.0.0.0 and :: for one mapping; both are kept.
func portsFromMap(pm nat.PortMap) []runtime.PortBinding {
	var out []runtime.PortBinding
	for port, bindings := range pm {
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			out = append(out, runtime.PortBinding{
				ContainerPort: port.Int(),
				HostPort:      hp,
				Protocol:      port.Proto(),
				HostIP:        b.HostIP,
			})
		}
	}
	sortPorts(out)
	return out
}

func sortPorts(p []runtime.PortBinding) {
	sort.Slice(p, func(i, j int) bool {
		a, b := p[i], p[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostIP != b.HostIP {
			return a.HostIP < b.HostIP
		}
		return a.HostPort < b.HostPort
	})
}

func networksFrom(m map[string]*network.EndpointSettings) map[string]runtime.NetworkInfo {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]runtime.NetworkInfo, len(m))
	for name, ep := range m {
		if ep == nil {
			continue
		}
		out[name] = runtime.NetworkInfo{
			NetworkID: ep.NetworkID,
			IPv4:      ep.IPAddress,
			MAC:       ep.MacAddress,
			Gateway:   ep.Gateway,
			PrefixLen: ep.IPPrefixLen,
			Aliases:   ep.Aliases,
		}
	}
	return out
}

// parseTime reads Docker's RFC 3339 times; its "never" (year 1) becomes zero.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
