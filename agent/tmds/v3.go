package tmds

import "time"

// v3 answers are the v4 ones without what version 4 added: the launch type,
// service name, VPC, log settings, container ARN, host IPs of ports and the
// awsvpc network details.

type taskV3 struct {
	Cluster               string            `json:"Cluster"`
	TaskARN               string            `json:"TaskARN"`
	Family                string            `json:"Family"`
	Revision              string            `json:"Revision"`
	DesiredStatus         string            `json:"DesiredStatus,omitempty"`
	KnownStatus           string            `json:"KnownStatus"`
	Containers            []containerV3     `json:"Containers,omitempty"`
	Limits                *Limits           `json:"Limits,omitempty"`
	PullStartedAt         *time.Time        `json:"PullStartedAt,omitempty"`
	PullStoppedAt         *time.Time        `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt    *time.Time        `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone      string            `json:"AvailabilityZone,omitempty"`
	TaskTags              map[string]string `json:"TaskTags,omitempty"`
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags,omitempty"`
}

type containerV3 struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []portV3          `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        Limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Networks      []networkV3       `json:"Networks,omitempty"`
	Health        *Health           `json:"Health,omitempty"`
	Volumes       []Volume          `json:"Volumes,omitempty"`
}

type portV3 struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
}

type networkV3 struct {
	NetworkMode   string   `json:"NetworkMode,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
}

func toV3Task(t Task) taskV3 {
	out := taskV3{
		Cluster:               t.Cluster,
		TaskARN:               t.TaskARN,
		Family:                t.Family,
		Revision:              t.Revision,
		DesiredStatus:         t.DesiredStatus,
		KnownStatus:           t.KnownStatus,
		Limits:                t.Limits,
		PullStartedAt:         t.PullStartedAt,
		PullStoppedAt:         t.PullStoppedAt,
		ExecutionStoppedAt:    t.ExecutionStoppedAt,
		AvailabilityZone:      t.AvailabilityZone,
		TaskTags:              t.TaskTags,
		ContainerInstanceTags: t.ContainerInstanceTags,
	}
	for _, c := range t.Containers {
		out.Containers = append(out.Containers, toV3Container(c))
	}
	return out
}

func toV3Container(c Container) containerV3 {
	out := containerV3{
		DockerID:      c.DockerID,
		Name:          c.Name,
		DockerName:    c.DockerName,
		Image:         c.Image,
		ImageID:       c.ImageID,
		Labels:        c.Labels,
		DesiredStatus: c.DesiredStatus,
		KnownStatus:   c.KnownStatus,
		ExitCode:      c.ExitCode,
		Limits:        c.Limits,
		CreatedAt:     c.CreatedAt,
		StartedAt:     c.StartedAt,
		FinishedAt:    c.FinishedAt,
		Type:          c.Type,
		Health:        c.Health,
		Volumes:       c.Volumes,
	}
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, portV3{ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostPort: p.HostPort})
	}
	for _, n := range c.Networks {
		out.Networks = append(out.Networks, networkV3{NetworkMode: n.NetworkMode, IPv4Addresses: n.IPv4Addresses})
	}
	return out
}
