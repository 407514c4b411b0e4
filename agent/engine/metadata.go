package engine

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/tmds"
	"github.com/ecsd/ecsd/api/ecs"
)

// taskView is an immutable snapshot of a task for the metadata endpoint,
// published by the task's goroutine after every change.
type taskView struct {
	task   tmds.Task
	tokens map[string]string // token → Docker id ("" before creation)
	// starting are the tokens of containers created but not yet seen started
	// (their start may be in flight).
	starting map[string]bool
}

// setView publishes the task's current view and wakes readers waiting for
// a newer one.
func (t *task) setView() {
	t.view.Store(t.buildView())
	t.viewMu.Lock()
	if t.viewCh != nil {
		close(t.viewCh)
		t.viewCh = nil
	}
	t.viewMu.Unlock()
}

// viewChanged returns a channel closed at the next setView.
func (t *task) viewChanged() <-chan struct{} {
	t.viewMu.Lock()
	defer t.viewMu.Unlock()
	if t.viewCh == nil {
		t.viewCh = make(chan struct{})
	}
	return t.viewCh
}

// startWait bounds how long the metadata endpoint waits for a container that
// is being started to be seen running: a process may ask about itself before
// the engine has read back its start.
const startWait = 3 * time.Second

// lookup is the view for token, once the token's container is past its start.
func (t *task) lookup(token string) (*taskView, string, bool) {
	deadline := time.NewTimer(startWait)
	defer deadline.Stop()
	for {
		ch := t.viewChanged()
		v := t.view.Load()
		if v == nil {
			return nil, "", false
		}
		id, ok := v.tokens[token]
		if !ok {
			return nil, "", false
		}
		if !v.starting[token] {
			return v, id, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return v, id, true
		}
	}
}

func (t *task) buildView() *taskView {
	def := t.asg.Definition
	cluster := t.asg.ClusterArn
	if cluster == "" {
		cluster = t.e.cfg.ClusterArn
	}
	az := t.asg.AZ
	if az == "" {
		az = t.e.cfg.AvailabilityZone
	}
	launch := t.asg.LaunchType
	if launch == "" {
		launch = "EC2"
	}
	v := &taskView{tokens: map[string]string{}, starting: map[string]bool{}}
	created := t.facts().created
	tk := tmds.Task{
		Cluster:               clusterName(cluster),
		TaskARN:               t.arn,
		Family:                def.Family,
		Revision:              strconv.Itoa(int(def.Revision)),
		DesiredStatus:         t.desired,
		KnownStatus:           tmdsTaskStatus(t.known, created),
		Limits:                taskLimits(def),
		PullStartedAt:         utcPtr(t.pullStartedAt),
		PullStoppedAt:         utcPtr(t.pullStoppedAt),
		ExecutionStoppedAt:    utcPtr(t.executionStoppedAt),
		AvailabilityZone:      az,
		LaunchType:            launch,
		ServiceName:           t.asg.ServiceName,
		ContainerInstanceTags: maps.Clone(t.e.cfg.InstanceTags),
	}
	if t.fargate() {
		// Nothing of the machine shows through on Fargate.
		tk.ContainerInstanceTags = nil
		tk.CapacityProviderName = t.asg.CapacityProviderName
	}
	if len(t.asg.Tags) > 0 {
		tk.TaskTags = map[string]string{}
		for _, tag := range t.asg.Tags {
			tk.TaskTags[tag.Key] = tag.Value
		}
	}
	for _, c := range t.allContainers() {
		if c.token != "" {
			v.tokens[c.token] = c.id
			if c.id != "" && !c.started && !c.exited && t.desired == StatusRunning {
				v.starting[c.token] = true
			}
		}
		if c.id == "" {
			continue // the agent lists containers once they exist
		}
		tk.Containers = append(tk.Containers, t.containerView(c))
	}
	v.task = tk
	return v
}

func (t *task) containerView(c *container) tmds.Container {
	cpu := float64(max(c.def.Cpu, minimumCPUShares))
	cv := tmds.Container{
		DockerID:      c.id,
		Name:          c.name,
		DockerName:    c.dockerName,
		Image:         c.image,
		ImageID:       c.imageID,
		DesiredStatus: t.desired,
		KnownStatus:   c.tmdsStatus(),
		Limits:        tmds.Limits{CPU: &cpu},
		CreatedAt:     utcPtr(c.createdAt),
		StartedAt:     utcPtr(c.startedAt),
		FinishedAt:    utcPtr(c.finishedAt),
		Type:          tmds.TypeNormal,
	}
	if c.exitCode != nil {
		code := int(*c.exitCode)
		cv.ExitCode = &code
	}
	var mem int64
	if c.def.Memory != nil {
		mem = int64(*c.def.Memory)
	}
	cv.Limits.Memory = &mem
	if len(c.labels) > 0 {
		cv.Labels = make(map[string]string, len(c.labels))
		for k, val := range c.labels {
			if !hiddenLabels[k] && !(t.fargate() && strings.HasPrefix(k, "ecsd.")) {
				cv.Labels[k] = val
			}
		}
	}
	if lc := c.def.LogConfiguration; lc != nil {
		cv.LogDriver, cv.LogOptions = string(lc.LogDriver), lc.Options
	}
	if c.pause {
		cv.Type = tmds.TypeCNIPause
		cv.DesiredStatus = "RESOURCES_PROVISIONED"
		if t.desired == StatusStopped {
			cv.DesiredStatus = StatusStopped
		}
		cv.Limits = tmds.Limits{CPU: &cpu, Memory: &mem}
	}
	if c.hasHealth {
		cv.Health = &tmds.Health{Status: c.health, Since: utcPtr(c.healthSince), Output: c.healthOutput}
	}
	for _, m := range c.mounts {
		vol := tmds.Volume{Source: m.Source, Destination: m.Target}
		if m.Type == runtime.MountVolume {
			vol.DockerName = m.Source
			vol.Source = ""
		}
		cv.Volumes = append(cv.Volumes, vol)
	}
	switch t.networkMode {
	case "bridge":
		n := tmds.Network{NetworkMode: "bridge"}
		if c.ipv4 != "" {
			n.IPv4Addresses = []string{c.ipv4}
		}
		cv.Networks = []tmds.Network{n}
		for _, b := range c.ports {
			if b.HostIP != "" && b.HostIP != "0.0.0.0" {
				continue
			}
			cv.Ports = append(cv.Ports, tmds.Port{ContainerPort: uint16(b.ContainerPort), Protocol: b.Protocol, HostPort: uint16(b.HostPort), HostIP: "0.0.0.0"})
		}
	case "host", "none":
		cv.Networks = []tmds.Network{{NetworkMode: t.networkMode}}
		if t.networkMode == "host" {
			cv.Ports = sameHostPorts(c.def.PortMappings)
		}
	case "awsvpc":
		if a := t.att; a != nil {
			zero := 0
			n := tmds.Network{
				NetworkMode:     "awsvpc",
				IPv4Addresses:   []string{a.ip},
				AttachmentIndex: &zero,
				MACAddress:      a.mac,
				PrivateDNSName:  a.dnsName,
			}
			if p := t.e.awsvpc.prefix; p.IsValid() {
				n.IPv4SubnetCIDRBlock = p.String()
				n.SubnetGatewayIPv4Address = t.e.awsvpc.gateway + "/" + strconv.Itoa(p.Bits())
			}
			cv.Networks = []tmds.Network{n}
		}
		if !c.pause {
			cv.Ports = sameHostPorts(c.def.PortMappings)
		}
	}
	return cv
}

// sameHostPorts: in host and awsvpc mode a container port is its own host port.
func sameHostPorts(pms []ecs.PortMapping) []tmds.Port {
	var out []tmds.Port
	for _, pm := range pms {
		if pm.ContainerPort == nil {
			continue
		}
		proto := string(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		p := uint16(*pm.ContainerPort)
		out = append(out, tmds.Port{ContainerPort: p, Protocol: proto, HostPort: p})
	}
	return out
}

// tmdsStatus is the container's status in the ECS agent's own terms.
func (c *container) tmdsStatus() string {
	switch {
	case c.exited || c.removed:
		return StatusStopped
	case c.running && c.pause:
		return "RESOURCES_PROVISIONED"
	case c.running:
		return StatusRunning
	case c.id != "":
		return "CREATED"
	default:
		return "NONE"
	}
}

// taskLimits: task-level cpu in vCPUs and memory in MiB, when the task
// definition sets them.
func taskLimits(def ecs.TaskDefinition) *tmds.Limits {
	var l tmds.Limits
	if n, err := strconv.ParseFloat(def.Cpu, 64); err == nil && n > 0 {
		v := n / 1024
		l.CPU = &v
	}
	if n, err := strconv.ParseInt(def.Memory, 10, 64); err == nil && n > 0 {
		l.Memory = &n
	}
	if l.CPU == nil && l.Memory == nil {
		return nil
	}
	return &l
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
