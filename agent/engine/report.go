package engine

import (
	"reflect"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// publish refreshes what the metadata endpoint shows and reports a state
// change when anything the server tracks changed: the task's status, a
// container's status, exit code, reason, health or bindings.
func (t *task) publish() {
	t.setView()
	if !t.assigned || t.known == StatusProvisioning {
		// The server set PROVISIONING itself; a re-attached task reports once
		// the server has told it what it wants.
		return
	}
	sc := t.stateChange()
	if t.last != nil && sameState(*t.last, sc) {
		return
	}
	t.last = &sc
	t.e.cfg.Reporter.Report(sc)
}

// sameState compares two changes ignoring when they were made.
func sameState(a, b agentapi.StateChange) bool {
	a.At, b.At = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// stateChange is the task's whole known state.
func (t *task) stateChange() agentapi.StateChange {
	sc := agentapi.StateChange{
		TaskArn:            t.arn,
		Status:             t.known,
		HealthStatus:       t.healthStatus(),
		StopCode:           t.stopCode,
		StoppedReason:      t.stopReason,
		PullStartedAt:      timePtr(t.pullStartedAt),
		PullStoppedAt:      timePtr(t.pullStoppedAt),
		StartedAt:          timePtr(t.startedAt),
		ExecutionStoppedAt: timePtr(t.executionStoppedAt),
		Containers:         make([]agentapi.ContainerState, 0, len(t.containers)),
		At:                 t.now(),
	}
	if !t.connectivityAt.IsZero() {
		sc.Connectivity = "CONNECTED"
		sc.ConnectivityAt = timePtr(t.connectivityAt)
	}
	for _, c := range t.containers {
		sc.Containers = append(sc.Containers, t.containerState(c))
	}
	if a := t.att; a != nil {
		sc.Attachments = []ecs.Attachment{{
			Id:     a.id,
			Type:   "ElasticNetworkInterface",
			Status: a.status,
			Details: []ecs.KeyValuePair{
				{Name: "subnetId", Value: a.subnetID},
				{Name: "networkInterfaceId", Value: a.eniID},
				{Name: "macAddress", Value: a.mac},
				{Name: "privateDnsName", Value: a.dnsName},
				{Name: "privateIPv4Address", Value: a.ip},
			},
		}}
	}
	return sc
}

func (t *task) containerState(c *container) agentapi.ContainerState {
	cs := agentapi.ContainerState{
		Name:         c.name,
		RuntimeID:    c.id,
		ImageDigest:  c.imageID,
		LastStatus:   c.lastStatus(),
		ExitCode:     c.exitCode,
		Reason:       c.reason,
		HealthStatus: c.health,
	}
	if t.known == StatusStopped && cs.LastStatus != StatusStopped {
		// Never started (or could not be seen to stop): stopped with the task.
		cs.LastStatus = StatusStopped
	}
	if cs.HealthStatus == "" {
		cs.HealthStatus = HealthUnknown
	}
	switch t.networkMode {
	case "bridge":
		cs.NetworkBindings = bridgeBindings(c.ports)
	case "host":
		if c.started {
			cs.NetworkBindings = hostBindings(c.def.PortMappings)
		}
	case "awsvpc":
		if t.att != nil && c.id != "" {
			cs.NetworkInterfaces = []ecs.NetworkInterface{{AttachmentId: t.att.id, PrivateIpv4Address: t.att.ip}}
		}
	}
	return cs
}

// bridgeBindings reports the IPv4 bindings Docker made (it binds IPv6 too).
func bridgeBindings(ports []runtime.PortBinding) []ecs.NetworkBinding {
	var out []ecs.NetworkBinding
	for _, p := range ports {
		if p.HostIP != "" && p.HostIP != "0.0.0.0" {
			continue
		}
		cp, hp := int32(p.ContainerPort), int32(p.HostPort)
		out = append(out, ecs.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: &cp, HostPort: &hp, Protocol: ecs.TransportProtocol(p.Protocol)})
	}
	return out
}

// hostBindings: in host mode the container's ports are the host's.
func hostBindings(pms []ecs.PortMapping) []ecs.NetworkBinding {
	var out []ecs.NetworkBinding
	for _, pm := range pms {
		if pm.ContainerPort == nil {
			continue
		}
		cp := *pm.ContainerPort
		hp := cp
		if pm.HostPort != nil && *pm.HostPort != 0 {
			hp = *pm.HostPort
		}
		proto := pm.Protocol
		if proto == "" {
			proto = ecs.TransportProtocolTcp
		}
		out = append(out, ecs.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: &cp, HostPort: &hp, Protocol: proto})
	}
	return out
}

// healthStatus is the task's health: UNHEALTHY if an essential container is
// unhealthy, HEALTHY if every essential container with a health check is
// healthy (and there is one), else UNKNOWN.
func (t *task) healthStatus() string {
	checked, healthy := 0, 0
	for _, c := range t.containers {
		if !c.essential || !c.hasHealth {
			continue
		}
		checked++
		switch c.health {
		case HealthUnhealthy:
			return HealthUnhealthy
		case HealthHealthy:
			healthy++
		}
	}
	if checked > 0 && healthy == checked {
		return HealthHealthy
	}
	return HealthUnknown
}

// stoppedUnknown is the report for a task the server wants stopped but that
// has nothing here (never started, or already cleaned up).
func stoppedUnknown(a agentapi.TaskAssignment, now time.Time) agentapi.StateChange {
	sc := agentapi.StateChange{
		TaskArn:            a.TaskArn,
		Status:             StatusStopped,
		StopCode:           a.StopCode,
		StoppedReason:      a.StoppedReason,
		ExecutionStoppedAt: &now,
		At:                 now,
	}
	sc.Containers = make([]agentapi.ContainerState, 0, len(a.Definition.ContainerDefinitions))
	for _, d := range a.Definition.ContainerDefinitions {
		sc.Containers = append(sc.Containers, agentapi.ContainerState{Name: d.Name, LastStatus: StatusStopped, HealthStatus: HealthUnknown})
	}
	return sc
}
