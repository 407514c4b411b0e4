package taskbuild

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

var testScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

func i32(v int32) *int32 { return &v }

func pm(container, host *int32, proto ecs.TransportProtocol) ecs.PortMapping {
	return ecs.PortMapping{ContainerPort: container, HostPort: host, Protocol: proto}
}

// portsDef has static, dynamic and UDP mappings in two containers.
func portsDef(mode ecs.NetworkMode) *ecs.TaskDefinition {
	return &ecs.TaskDefinition{
		Family: "web", NetworkMode: mode,
		ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "a", Cpu: 128, Memory: i32(256), PortMappings: []ecs.PortMapping{
				pm(i32(80), i32(8080), ""),                       // static
				pm(i32(81), i32(0), ""),                          // dynamic (0)
				pm(i32(82), nil, ""),                             // no host port
				pm(i32(53), i32(5353), ecs.TransportProtocolUdp), // static UDP
			}},
			{Name: "b", Cpu: 64, Memory: i32(128), PortMappings: []ecs.PortMapping{
				pm(i32(9000), nil, ecs.TransportProtocolTcp),
			}},
		},
	}
}

func TestNeedsPorts(t *testing.T) {
	cases := []struct {
		mode     ecs.NetworkMode
		wantMode string
		tcp, udp []int32
	}{
		// Bridge (and the default): only hostPort > 0 is static.
		{"", "bridge", []int32{8080}, []int32{5353}},
		{ecs.NetworkModeBridge, "bridge", []int32{8080}, []int32{5353}},
		// Host: the host port, else the container port it must equal.
		{ecs.NetworkModeHost, "host", []int32{8080, 81, 82, 9000}, []int32{5353}},
		// awsvpc and none: the task's own interface, no host ports.
		{ecs.NetworkModeAwsvpc, "awsvpc", nil, nil},
		{ecs.NetworkModeNone, "none", nil, nil},
	}
	for _, c := range cases {
		def := portsDef(c.mode)
		need, use := Needs(def, def.ContainerDefinitions, "", "")
		if need.NetworkMode != c.wantMode || !slices.Equal(need.TCPPorts, c.tcp) || !slices.Equal(need.UDPPorts, c.udp) {
			t.Errorf("mode %q: need mode %q tcp %v udp %v, want %q %v %v", c.mode, need.NetworkMode, need.TCPPorts, need.UDPPorts, c.wantMode, c.tcp, c.udp)
		}
		if !slices.Equal(use.TCPPorts, c.tcp) || !slices.Equal(use.UDPPorts, c.udp) {
			t.Errorf("mode %q: usage ports %v %v", c.mode, use.TCPPorts, use.UDPPorts)
		}
		if need.CPU != 192 || need.Memory != 384 || use.CPU != 192 || use.Memory != 384 {
			t.Errorf("mode %q: cpu/memory %d/%d usage %d/%d, want 192/384", c.mode, need.CPU, need.Memory, use.CPU, use.Memory)
		}
	}
	// The usage owns its port lists.
	def := portsDef(ecs.NetworkModeBridge)
	need, use := Needs(def, def.ContainerDefinitions, "", "")
	use.TCPPorts[0] = 1
	if need.TCPPorts[0] != 8080 {
		t.Errorf("usage shares the request's ports")
	}
}

func TestNeedsSizes(t *testing.T) {
	def := &ecs.TaskDefinition{
		Family: "sz",
		ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "hard", Cpu: 100, Memory: i32(512)},
			{Name: "soft", Cpu: 50, Memory: i32(1024), MemoryReservation: i32(256)},
			{Name: "softonly", MemoryReservation: i32(64)},
			{Name: "none"},
		},
		RequiresAttributes: []ecs.Attribute{{Name: "ecs.capability.task-eni"}, {Name: "stack", Value: "blue"}},
	}
	cases := []struct {
		name         string
		cpu, mem     string
		wantC, wantM int64
	}{
		// Containers: CPU summed; memoryReservation (what ECS reserves) when
		// given, else memory.
		{"containers", "", "", 150, 512 + 256 + 64},
		{"task level", "1024", "2048", 1024, 2048},
		{"task cpu only", "256", "", 256, 832},
		{"task memory only", "", "3072", 150, 3072},
		{"units", "1 vCPU", "2 GB", 1024, 2048},
		{"half units", "0.5 vcpu", "0.5GB", 512, 512},
		{"unparsable falls back", "lots", "much", 150, 832},
	}
	for _, c := range cases {
		need, use := Needs(def, def.ContainerDefinitions, c.cpu, c.mem)
		if need.CPU != c.wantC || need.Memory != c.wantM || use.CPU != c.wantC || use.Memory != c.wantM {
			t.Errorf("%s: need %d/%d usage %d/%d, want %d/%d", c.name, need.CPU, need.Memory, use.CPU, use.Memory, c.wantC, c.wantM)
		}
		want := []scheduler.Attribute{{Name: "ecs.capability.task-eni"}, {Name: "stack", Value: "blue"}}
		if !slices.Equal(need.RequiredAttributes, want) {
			t.Errorf("%s: required attributes %v", c.name, need.RequiredAttributes)
		}
	}
	// Overridden containers count, not the definition's.
	over := resource.ApplyContainerOverrides(def.ContainerDefinitions, &ecs.TaskOverride{
		ContainerOverrides: []ecs.ContainerOverride{{Name: "hard", Cpu: i32(400), MemoryReservation: i32(100)}},
	})
	if need, _ := Needs(def, over, "", ""); need.CPU != 450 || need.Memory != 100+256+64 {
		t.Errorf("overridden: %d/%d", need.CPU, need.Memory)
	}
}

func ec2Instance() *resource.ContainerInstance {
	return &resource.ContainerInstance{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceArn: testScope.ContainerInstanceARN("prod", "i1"),
			Attributes: []ecs.Attribute{
				{Name: scheduler.AZAttribute, Value: "us-east-1b"},
				{Name: "ecs.cpu-architecture", Value: "arm64"},
			},
		},
		Scope: testScope, Cluster: "prod", ID: "i1",
	}
}

func webSpec() *Spec {
	def := portsDef(ecs.NetworkModeBridge)
	def.TaskDefinitionArn = testScope.TaskDefinitionARN("web", 3)
	def.InferenceAccelerators = []ecs.InferenceAccelerator{{DeviceName: "d1", DeviceType: "eia2.medium"}}
	_, use := Needs(def, def.ContainerDefinitions, "", "")
	return &Spec{
		Scope: testScope, Cluster: "prod", Definition: def, Reserve: use,
		Group: "family:web", StartedBy: "ci", ReferenceID: "ref-1",
		Tags: []ecs.Tag{{Key: "team", Value: "blue"}}, EnableExecuteCommand: true,
	}
}

func TestNewPlacedEC2(t *testing.T) {
	s := webSpec()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tk := s.New(now, planner.Placement{Target: planner.Target{LaunchType: ecs.LaunchTypeEC2}, Instance: ec2Instance()})

	if !strings.HasPrefix(tk.TaskArn, "arn:aws:ecs:us-east-1:123456789012:task/prod/") || len(tk.ID) != 32 ||
		tk.TaskArn != testScope.TaskARN("prod", tk.ID) || tk.ClusterArn != testScope.ClusterARN("prod") {
		t.Errorf("arn %s id %s cluster %s", tk.TaskArn, tk.ID, tk.ClusterArn)
	}
	checks := map[string][2]string{
		"lastStatus":           {tk.LastStatus, "PENDING"},
		"desiredStatus":        {tk.DesiredStatus, "RUNNING"},
		"launchType":           {string(tk.LaunchType), "EC2"},
		"containerInstanceArn": {tk.ContainerInstanceArn, testScope.ContainerInstanceARN("prod", "i1")},
		"instanceId":           {tk.InstanceID, "i1"},
		"instanceCluster":      {tk.InstanceCluster, ""},
		"availabilityZone":     {tk.AvailabilityZone, "us-east-1b"},
		"cpu":                  {tk.Cpu, "192"}, // no task size: the reservation
		"memory":               {tk.Memory, "384"},
		"group":                {tk.Group, "family:web"},
		"startedBy":            {tk.StartedBy, "ci"},
		"referenceId":          {tk.ReferenceID, "ref-1"},
		"healthStatus":         {string(tk.HealthStatus), "UNKNOWN"},
		"taskDefinitionArn":    {tk.TaskDefinitionArn, s.Definition.TaskDefinitionArn},
		"platformVersion":      {tk.PlatformVersion, ""},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if tk.Version != 1 || tk.CreatedAt == nil || !tk.CreatedAt.Time.Equal(now) || !tk.EnableExecuteCommand {
		t.Errorf("version %d createdAt %v exec %v", tk.Version, tk.CreatedAt, tk.EnableExecuteCommand)
	}
	if len(tk.Attributes) != 1 || tk.Attributes[0] != (ecs.Attribute{Name: "ecs.cpu-architecture", Value: "arm64"}) {
		t.Errorf("attributes %+v", tk.Attributes)
	}
	if tk.Attachments == nil || len(tk.Attachments) != 0 || tk.NetworkConfiguration != nil {
		t.Errorf("attachments %+v network %+v", tk.Attachments, tk.NetworkConfiguration)
	}
	if len(tk.InferenceAccelerators) != 1 || tk.Definition.Family != "web" {
		t.Errorf("accelerators %+v definition %q", tk.InferenceAccelerators, tk.Definition.Family)
	}
	if tk.PlacementConstraints != nil || tk.PlacementStrategy != nil {
		t.Errorf("placed copy keeps placement rules")
	}
	if !slices.Equal(tk.Reserved.TCPPorts, []int32{8080}) || tk.Reserved.CPU != 192 || tk.Reserved.Memory != 384 {
		t.Errorf("reserved %+v", tk.Reserved)
	}
	if len(tk.Tags) != 1 || tk.Tags[0].Key != "team" {
		t.Errorf("tags %+v", tk.Tags)
	}
	// Overrides: one entry per container, by name, lists never nil.
	if o := tk.Overrides; o == nil || len(o.ContainerOverrides) != 2 || o.ContainerOverrides[0].Name != "a" ||
		o.ContainerOverrides[1].Name != "b" || o.InferenceAcceleratorOverrides == nil {
		t.Errorf("overrides %+v", tk.Overrides)
	}
	if len(tk.Containers) != 2 {
		t.Fatalf("containers %+v", tk.Containers)
	}
	for i, ct := range tk.Containers {
		if !strings.HasPrefix(ct.ContainerArn, "arn:aws:ecs:us-east-1:123456789012:container/prod/"+tk.ID+"/") ||
			ct.TaskArn != tk.TaskArn || ct.LastStatus != "PENDING" || ct.HealthStatus != ecs.HealthStatusUNKNOWN ||
			ct.NetworkInterfaces == nil || ct.Name != s.Definition.ContainerDefinitions[i].Name {
			t.Errorf("container %d %+v", i, ct)
		}
	}
	if tk.Containers[0].Cpu != "128" || tk.Containers[0].Memory != "256" || tk.Containers[0].MemoryReservation != "" {
		t.Errorf("container sizes %+v", tk.Containers[0])
	}
	// Copies are independent records.
	tk2 := s.New(now, planner.Placement{Target: planner.Target{LaunchType: ecs.LaunchTypeEC2}, Instance: ec2Instance()})
	if tk2.ID == tk.ID || tk2.Containers[0].ContainerArn == tk.Containers[0].ContainerArn {
		t.Errorf("two copies share ids")
	}
	tk2.Tags[0].Value = "x"
	tk2.Reserved.TCPPorts[0] = 1
	if tk.Tags[0].Value != "blue" || s.Tags[0].Value != "blue" || s.Reserve.TCPPorts[0] != 8080 {
		t.Errorf("copies share tags or reservations")
	}
}

func TestNewShortARNAndOverrides(t *testing.T) {
	s := webSpec()
	s.ShortARN = true
	s.CPU, s.Memory = "512", "1024"
	o := &ecs.TaskOverride{Cpu: "512", ContainerOverrides: []ecs.ContainerOverride{{Name: "b", Command: []string{"sh"}, MemoryReservation: i32(64)}}}
	s.Containers = resource.ApplyContainerOverrides(s.Definition.ContainerDefinitions, o)
	s.Overrides = Overrides(s.Definition.ContainerDefinitions, o)
	tk := s.New(time.Now(), planner.Placement{Target: planner.Target{LaunchType: ecs.LaunchTypeEC2}, Instance: ec2Instance()})
	if tk.TaskArn != "arn:aws:ecs:us-east-1:123456789012:task/"+tk.ID {
		t.Errorf("short arn %s", tk.TaskArn)
	}
	if tk.Cpu != "512" || tk.Memory != "1024" {
		t.Errorf("task size %s/%s", tk.Cpu, tk.Memory)
	}
	co := tk.Overrides.ContainerOverrides
	if tk.Overrides.Cpu != "512" || len(co) != 2 || co[0].Name != "a" || co[0].Command != nil || co[1].Name != "b" || len(co[1].Command) != 1 {
		t.Errorf("overrides %+v", tk.Overrides)
	}
	if tk.Containers[1].MemoryReservation != "64" {
		t.Errorf("overridden container %+v", tk.Containers[1])
	}
}

func awsvpcSpec() *Spec {
	def := &ecs.TaskDefinition{
		Family: "fg", NetworkMode: ecs.NetworkModeAwsvpc, Cpu: "256", Memory: "512",
		TaskDefinitionArn:    testScope.TaskDefinitionARN("fg", 1),
		ContainerDefinitions: []ecs.ContainerDefinition{{Name: "app", Image: "busybox", PortMappings: []ecs.PortMapping{pm(i32(80), nil, "")}}},
	}
	_, use := Needs(def, def.ContainerDefinitions, def.Cpu, def.Memory)
	return &Spec{
		Scope: testScope, Cluster: "prod", Definition: def, CPU: def.Cpu, Memory: def.Memory, Reserve: use,
		Group: "service:api", StartedBy: "ecs-svc/1", ServiceName: "api", DeploymentID: "ecs-svc/1",
		NetworkConfiguration: &ecs.NetworkConfiguration{AwsvpcConfiguration: &ecs.AwsVpcConfiguration{Subnets: []string{"subnet-1", "subnet-2"}}},
		PlacementConstraints: []ecs.PlacementConstraint{{Type: "memberOf", Expression: "attribute:stack == blue"}},
		PlacementStrategy:    []ecs.PlacementStrategy{{Type: "spread", Field: "attribute:ecs.availability-zone"}},
	}
}

func TestNewFargate(t *testing.T) {
	pool := &resource.ContainerInstance{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceArn: testScope.ContainerInstanceARN(resource.FargatePool, "f1"),
			Attributes:           []ecs.Attribute{{Name: scheduler.AZAttribute, Value: "us-east-1a"}},
		},
		Scope: testScope, Cluster: resource.FargatePool, ID: "f1", Fargate: true,
	}
	for _, c := range []struct {
		name     string
		pv       string
		storage  *ecs.EphemeralStorage
		defStore *ecs.EphemeralStorage
		target   planner.Target
		wantPV   string
		wantGiB  int32
		wantCP   string
	}{
		{"latest default storage", "", nil, nil, planner.Target{LaunchType: ecs.LaunchTypeFARGATE}, "1.4.0", 20, ""},
		{"LATEST definition storage", "LATEST", nil, &ecs.EphemeralStorage{SizeInGiB: 50}, planner.Target{LaunchType: ecs.LaunchTypeFARGATE}, "1.4.0", 50, ""},
		{"call's version and storage", "1.3.0", &ecs.EphemeralStorage{SizeInGiB: 100}, &ecs.EphemeralStorage{SizeInGiB: 50}, planner.Target{CapacityProvider: "FARGATE_SPOT"}, "1.3.0", 100, "FARGATE_SPOT"},
	} {
		s := awsvpcSpec()
		s.PlatformVersion, s.EphemeralStorage, s.Definition.EphemeralStorage = c.pv, c.storage, c.defStore
		tk := s.New(time.Now(), planner.Placement{Target: c.target, Instance: pool})
		if tk.LaunchType != ecs.LaunchTypeFARGATE || tk.CapacityProviderName != c.wantCP || tk.PlatformVersion != c.wantPV ||
			tk.PlatformFamily != "Linux" || tk.EphemeralStorage == nil || tk.EphemeralStorage.SizeInGiB != c.wantGiB {
			t.Errorf("%s: launchType %s provider %q platform %s/%s storage %+v", c.name, tk.LaunchType, tk.CapacityProviderName, tk.PlatformVersion, tk.PlatformFamily, tk.EphemeralStorage)
		}
		// On the pool: the instance and its home, no container instance ARN.
		if tk.InstanceID != "f1" || tk.InstanceCluster != resource.FargatePool || tk.ContainerInstanceArn != "" || tk.AvailabilityZone != "us-east-1a" {
			t.Errorf("%s: placement %q %q %q %q", c.name, tk.InstanceID, tk.InstanceCluster, tk.ContainerInstanceArn, tk.AvailabilityZone)
		}
		// awsvpc: PROVISIONING with its network interface, no host ports.
		if tk.LastStatus != "PROVISIONING" || len(tk.Attachments) != 1 || tk.Attachments[0].Type != "ElasticNetworkInterface" ||
			tk.Attachments[0].Status != "PRECREATED" || tk.Attachments[0].Details[0] != (ecs.KeyValuePair{Name: "subnetId", Value: "subnet-1"}) ||
			tk.NetworkConfiguration == nil || len(tk.Reserved.TCPPorts) != 0 {
			t.Errorf("%s: status %s attachments %+v reserved %+v", c.name, tk.LastStatus, tk.Attachments, tk.Reserved)
		}
		if tk.ServiceName != "api" || tk.DeploymentID != "ecs-svc/1" || tk.StartedBy != "ecs-svc/1" || tk.Cpu != "256" || tk.Memory != "512" {
			t.Errorf("%s: service %q deployment %q startedBy %q size %s/%s", c.name, tk.ServiceName, tk.DeploymentID, tk.StartedBy, tk.Cpu, tk.Memory)
		}
	}
	// Not on Fargate: no platform, the definition's storage as registered.
	s := awsvpcSpec()
	s.PlatformVersion, s.Definition.EphemeralStorage = "LATEST", &ecs.EphemeralStorage{SizeInGiB: 30}
	tk := s.New(time.Now(), planner.Placement{Target: planner.Target{LaunchType: ecs.LaunchTypeEC2}, Instance: ec2Instance()})
	if tk.PlatformVersion != "" || tk.PlatformFamily != "" || tk.EphemeralStorage == nil || tk.EphemeralStorage.SizeInGiB != 30 || tk.LastStatus != "PROVISIONING" {
		t.Errorf("EC2 awsvpc: platform %q/%q storage %+v status %s", tk.PlatformVersion, tk.PlatformFamily, tk.EphemeralStorage, tk.LastStatus)
	}
	// A network configuration for a definition that is not awsvpc is not kept.
	b := webSpec()
	b.NetworkConfiguration = awsvpcSpec().NetworkConfiguration
	if tk := b.New(time.Now(), planner.Placement{Instance: ec2Instance()}); tk.NetworkConfiguration != nil || len(tk.Attachments) != 0 {
		t.Errorf("bridge task kept network configuration %+v", tk.Attachments)
	}
}

func TestNewWaiting(t *testing.T) {
	for _, target := range []planner.Target{{CapacityProvider: "cp-nodes"}, {LaunchType: ecs.LaunchTypeFARGATE}} {
		s := awsvpcSpec()
		tk := s.New(time.Now(), planner.Placement{Target: target})
		if tk.InstanceID != "" || tk.ContainerInstanceArn != "" || tk.LastStatus != "PROVISIONING" || !tk.Waiting() {
			t.Errorf("%+v: instance %q status %s", target, tk.InstanceID, tk.LastStatus)
		}
		if len(tk.PlacementConstraints) != 1 || len(tk.PlacementStrategy) != 1 || tk.PlacementStrategy[0].Type != "spread" {
			t.Errorf("%+v: placement rules %+v %+v", target, tk.PlacementConstraints, tk.PlacementStrategy)
		}
		if tk.Attributes == nil || len(tk.Attributes) != 0 || tk.Reserved.CPU != 256 || tk.Reserved.Memory != 512 {
			t.Errorf("%+v: attributes %+v reserved %+v", target, tk.Attributes, tk.Reserved)
		}
	}
	// A waiting bridge copy also starts PROVISIONING (it has no instance yet).
	s := webSpec()
	if tk := s.New(time.Now(), planner.Placement{Target: planner.Target{CapacityProvider: "cp-nodes"}}); tk.LastStatus != "PROVISIONING" ||
		tk.CapacityProviderName != "cp-nodes" || tk.LaunchType != ecs.LaunchTypeEC2 {
		t.Errorf("waiting bridge: %s %q %s", tk.LastStatus, tk.CapacityProviderName, tk.LaunchType)
	}
}

func TestOverrides(t *testing.T) {
	defs := []ecs.ContainerDefinition{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	o := Overrides(defs, nil)
	if len(o.ContainerOverrides) != 3 || o.ContainerOverrides[2].Name != "c" || o.InferenceAcceleratorOverrides == nil {
		t.Errorf("none given: %+v", o)
	}
	in := &ecs.TaskOverride{Memory: "1024", ContainerOverrides: []ecs.ContainerOverride{{Name: "c", Cpu: i32(5)}, {Name: "a", Command: []string{"x"}}}}
	o = Overrides(defs, in)
	if o.Memory != "1024" || o.ContainerOverrides[0].Command[0] != "x" || o.ContainerOverrides[1].Name != "b" || *o.ContainerOverrides[2].Cpu != 5 {
		t.Errorf("given: %+v", o)
	}
	if len(in.ContainerOverrides) != 2 || in.InferenceAcceleratorOverrides != nil {
		t.Errorf("input changed: %+v", in)
	}
}
