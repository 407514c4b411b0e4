package taskbuild

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
)

// Fargate's defaults for a Linux task.
const (
	// FargatePlatformVersion is what LATEST (or no version) resolves to.
	FargatePlatformVersion = "1.4.0"
	FargatePlatformFamily  = "Linux"
	// FargateDefaultStorageGiB is the ephemeral storage a Fargate task gets
	// when neither the definition nor the call asks for more.
	FargateDefaultStorageGiB = 20
)

const (
	statusProvisioning = "PROVISIONING"
	statusPending      = "PENDING"
	statusRunning      = "RUNNING"
	attachmentENI      = "ElasticNetworkInterface"
	attachmentCreated  = "PRECREATED"
	attrCPUArch        = "ecs.cpu-architecture"
)

// Spec is everything a launch decides for its copies; New turns it into one
// task record per copy. Callers fill it once per launch (or batch).
type Spec struct {
	Scope   resource.Scope
	Cluster string
	// Definition is the task definition revision; each task keeps a copy.
	Definition *ecs.TaskDefinition
	// Containers are the effective containers (overrides applied); nil means
	// the definition's.
	Containers []ecs.ContainerDefinition
	// Overrides is the task's overrides as reported (see Overrides); nil
	// means none: one entry per container, by name.
	Overrides *ecs.TaskOverride
	// CPU and Memory are the task size after overrides ("" when not set:
	// the task then reports its reservation).
	CPU, Memory string
	// Reserve is what a copy is charged (from Needs).
	Reserve resource.Usage

	Group, StartedBy string
	// ReferenceID is RunTask's/StartTask's referenceId.
	ReferenceID          string
	Tags                 []ecs.Tag
	EnableExecuteCommand bool
	// NetworkConfiguration is the awsvpc configuration; kept, with a network
	// interface attachment, only for awsvpc definitions.
	NetworkConfiguration *ecs.NetworkConfiguration
	// ShortARN makes task ARNs of the old format (task/<id>, no cluster).
	ShortARN bool

	// PlatformVersion ("" or LATEST: the current one) and EphemeralStorage
	// (nil: the definition's, else the default) apply to Fargate copies.
	PlatformVersion  string
	EphemeralStorage *ecs.EphemeralStorage

	// PlacementConstraints and PlacementStrategy are recorded on copies that
	// wait for capacity, so they are placed later by the same rules.
	PlacementConstraints []ecs.PlacementConstraint
	PlacementStrategy    []ecs.PlacementStrategy

	// ServiceName and DeploymentID are set for a service's tasks.
	ServiceName, DeploymentID string
}

// New builds the record of one copy placed as p (p.Instance nil: waiting for
// capacity). It starts PROVISIONING when it waits or is awsvpc (its network
// interface comes first), else PENDING, as ECS reports EC2 tasks; desired
// RUNNING, containers PENDING, health UNKNOWN.
func (s *Spec) New(now time.Time, p planner.Placement) *resource.Task {
	def := s.Definition
	containers := s.Containers
	if containers == nil {
		containers = def.ContainerDefinitions
	}
	overrides := s.Overrides
	if overrides == nil {
		overrides = Overrides(def.ContainerDefinitions, nil)
	}
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	arn := s.Scope.TaskARN(s.Cluster, id)
	if s.ShortARN {
		arn = "arn:aws:ecs:" + s.Scope.Region + ":" + s.Scope.Account + ":task/" + id
	}
	awsvpc := NetworkMode(def) == ecs.NetworkModeAwsvpc
	status := statusPending
	if awsvpc || p.Instance == nil {
		status = statusProvisioning
	}
	t := &resource.Task{
		Scope: s.Scope, Cluster: s.Cluster, ID: id,
		Definition:   *def,
		Reserved:     resource.Usage{CPU: s.Reserve.CPU, Memory: s.Reserve.Memory, TCPPorts: slices.Clone(s.Reserve.TCPPorts), UDPPorts: slices.Clone(s.Reserve.UDPPorts)},
		ReferenceID:  s.ReferenceID,
		ServiceName:  s.ServiceName,
		DeploymentID: s.DeploymentID,
	}
	t.Task = ecs.Task{
		TaskArn:               arn,
		ClusterArn:            s.Scope.ClusterARN(s.Cluster),
		TaskDefinitionArn:     def.TaskDefinitionArn,
		Overrides:             overrides,
		LastStatus:            status,
		DesiredStatus:         statusRunning,
		Cpu:                   s.CPU,
		Memory:                s.Memory,
		CreatedAt:             ecs.NewTime(now),
		Version:               1,
		LaunchType:            p.Target.TaskLaunchType(),
		CapacityProviderName:  p.Target.CapacityProvider,
		Group:                 s.Group,
		StartedBy:             s.StartedBy,
		Tags:                  slices.Clone(s.Tags),
		EnableExecuteCommand:  s.EnableExecuteCommand,
		HealthStatus:          ecs.HealthStatusUNKNOWN,
		Attachments:           []ecs.Attachment{},
		Attributes:            []ecs.Attribute{},
		Containers:            make([]ecs.Container, 0, len(containers)),
		InferenceAccelerators: slices.Clone(def.InferenceAccelerators),
		EphemeralStorage:      def.EphemeralStorage,
	}
	if t.Cpu == "" && s.Reserve.CPU > 0 {
		t.Cpu = strconv.FormatInt(s.Reserve.CPU, 10)
	}
	if t.Memory == "" && s.Reserve.Memory > 0 {
		t.Memory = strconv.FormatInt(s.Reserve.Memory, 10)
	}
	if p.Target.Fargate() {
		t.PlatformVersion, t.PlatformFamily = s.PlatformVersion, FargatePlatformFamily
		if t.PlatformVersion == "" || t.PlatformVersion == "LATEST" {
			t.PlatformVersion = FargatePlatformVersion
		}
		t.EphemeralStorage = s.EphemeralStorage
		if t.EphemeralStorage == nil {
			t.EphemeralStorage = FargateStorage(def)
		}
	}
	if ci := p.Instance; ci != nil {
		planner.Place(t, ci, p.Target)
		for _, a := range ci.Attributes {
			if a.Name == attrCPUArch && a.Value != "" {
				t.Attributes = append(t.Attributes, ecs.Attribute{Name: attrCPUArch, Value: a.Value})
			}
		}
	} else {
		t.PlacementConstraints, t.PlacementStrategy = s.PlacementConstraints, s.PlacementStrategy
	}
	if nc := s.NetworkConfiguration; awsvpc && nc != nil && nc.AwsvpcConfiguration != nil {
		t.NetworkConfiguration = nc
		subnet := ""
		if len(nc.AwsvpcConfiguration.Subnets) > 0 {
			subnet = nc.AwsvpcConfiguration.Subnets[0]
		}
		t.Attachments = []ecs.Attachment{{
			Id: uuid.NewString(), Type: attachmentENI, Status: attachmentCreated,
			Details: []ecs.KeyValuePair{{Name: "subnetId", Value: subnet}},
		}}
	}
	for _, cd := range containers {
		ct := ecs.Container{
			ContainerArn:      s.Scope.ContainerARN(s.Cluster, id, uuid.NewString()),
			TaskArn:           arn,
			Name:              cd.Name,
			Image:             cd.Image,
			LastStatus:        statusPending,
			NetworkInterfaces: []ecs.NetworkInterface{},
			Cpu:               strconv.Itoa(int(cd.Cpu)),
			HealthStatus:      ecs.HealthStatusUNKNOWN,
		}
		if cd.Memory != nil {
			ct.Memory = strconv.Itoa(int(*cd.Memory))
		}
		if cd.MemoryReservation != nil {
			ct.MemoryReservation = strconv.Itoa(int(*cd.MemoryReservation))
		}
		t.Containers = append(t.Containers, ct)
	}
	return t
}

// Overrides is a task's overrides as ECS reports them: o's task-level fields
// and one container entry per container of defs, in definition order — the
// one o gives, or just the name. Lists are never nil.
func Overrides(defs []ecs.ContainerDefinition, o *ecs.TaskOverride) *ecs.TaskOverride {
	out := &ecs.TaskOverride{}
	if o != nil {
		*out = *o
	}
	given := map[string]ecs.ContainerOverride{}
	if o != nil {
		for _, co := range o.ContainerOverrides {
			given[co.Name] = co
		}
	}
	out.ContainerOverrides = make([]ecs.ContainerOverride, 0, len(defs))
	for _, d := range defs {
		if co, ok := given[d.Name]; ok {
			out.ContainerOverrides = append(out.ContainerOverrides, co)
		} else {
			out.ContainerOverrides = append(out.ContainerOverrides, ecs.ContainerOverride{Name: d.Name})
		}
	}
	if out.InferenceAcceleratorOverrides == nil {
		out.InferenceAcceleratorOverrides = []ecs.InferenceAcceleratorOverride{}
	}
	return out
}

// FargateStorage is a Fargate task's ephemeral storage when the call asks for
// none: the definition's, else the default.
func FargateStorage(def *ecs.TaskDefinition) *ecs.EphemeralStorage {
	if def.EphemeralStorage != nil {
		return &ecs.EphemeralStorage{SizeInGiB: def.EphemeralStorage.SizeInGiB}
	}
	return &ecs.EphemeralStorage{SizeInGiB: FargateDefaultStorageGiB}
}
