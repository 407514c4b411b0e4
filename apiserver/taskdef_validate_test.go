package apiserver

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ecsd/ecsd/api/ecs"
)

func tdPtr[T any](v T) *T { return &v }

// tdBase is a minimal valid EC2 definition the cases below change.
func tdBase() *ecs.RegisterTaskDefinitionRequest {
	return &ecs.RegisterTaskDefinitionRequest{
		Family: "web",
		ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "app", Image: "busybox", Memory: tdPtr[int32](128)},
		},
	}
}

// tdFargate is a minimal valid Fargate definition.
func tdFargate() *ecs.RegisterTaskDefinitionRequest {
	r := tdBase()
	r.RequiresCompatibilities = []ecs.Compatibility{ecs.CompatibilityFARGATE}
	r.NetworkMode = ecs.NetworkModeAwsvpc
	r.Cpu, r.Memory = "256", "512"
	r.ContainerDefinitions[0].Memory = nil
	return r
}

func tdCode(err error) string {
	var e *ecs.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestTaskDefValidateRejects(t *testing.T) {
	type mut func(r *ecs.RegisterTaskDefinitionRequest)
	c0 := func(f func(c *ecs.ContainerDefinition)) mut {
		return func(r *ecs.RegisterTaskDefinitionRequest) { f(&r.ContainerDefinitions[0]) }
	}
	second := func(c ecs.ContainerDefinition) mut {
		return func(r *ecs.RegisterTaskDefinitionRequest) { r.ContainerDefinitions = append(r.ContainerDefinitions, c) }
	}
	all := func(ms ...mut) mut {
		return func(r *ecs.RegisterTaskDefinitionRequest) {
			for _, m := range ms {
				m(r)
			}
		}
	}
	hc := &ecs.HealthCheck{Command: []string{"CMD-SHELL", "true"}}
	cases := []struct {
		name    string
		fargate bool
		mut     mut
		code    string
		msg     string
	}{
		{"family invalid chars", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Family = "web app" }, ecs.CodeClient, "Family contains invalid characters."},
		{"family too long", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Family = strings.Repeat("a", 256) }, ecs.CodeClient, "too long"},
		{"no containers", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.ContainerDefinitions = []ecs.ContainerDefinition{} }, ecs.CodeClient, "Container list cannot be empty."},
		{"eleven containers", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			for i := range 10 {
				r.ContainerDefinitions = append(r.ContainerDefinitions, ecs.ContainerDefinition{Name: "c" + string(rune('a'+i)), Image: "busybox", Memory: tdPtr[int32](64)})
			}
		}, ecs.CodeClient, "at most 10 containers"},
		{"container name empty", false, c0(func(c *ecs.ContainerDefinition) { c.Name = "" }), ecs.CodeClient, "Container.name should not be null or empty."},
		{"container name invalid", false, c0(func(c *ecs.ContainerDefinition) { c.Name = "a.b" }), ecs.CodeClient, "Container.name contains invalid characters."},
		{"container name too long", false, c0(func(c *ecs.ContainerDefinition) { c.Name = strings.Repeat("x", 256) }), ecs.CodeClient, "Container.name"},
		{"duplicate container names", false, second(ecs.ContainerDefinition{Name: "app", Image: "busybox", Memory: tdPtr[int32](64)}), ecs.CodeClient, "Container names must be unique within a Task Definition."},
		{"image missing", false, c0(func(c *ecs.ContainerDefinition) { c.Image = "" }), ecs.CodeClient, "Container.image should not be null or empty."},
		{"no essential container", false, c0(func(c *ecs.ContainerDefinition) { c.Essential = tdPtr(false) }), ecs.CodeClient, "at least one essential container"},
		{"no memory on EC2", false, c0(func(c *ecs.ContainerDefinition) { c.Memory = nil }), ecs.CodeClient, "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."},
		{"memory below reservation", false, c0(func(c *ecs.ContainerDefinition) { c.MemoryReservation = tdPtr[int32](256) }), ecs.CodeClient, "container 'app'"},
		{"memory below floor", false, c0(func(c *ecs.ContainerDefinition) { c.Memory = tdPtr[int32](5) }), ecs.CodeClient, "minimum is 6 MiB"},
		{"reservation zero", false, c0(func(c *ecs.ContainerDefinition) { c.Memory = nil; c.MemoryReservation = tdPtr[int32](0) }), ecs.CodeClient, "memoryReservation"},
		{"negative cpu", false, c0(func(c *ecs.ContainerDefinition) { c.Cpu = -1 }), ecs.CodeClient, "'cpu' setting for container 'app'"},
		{"task cpu unparsable", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "lots" }, ecs.CodeInvalidParameter, "Invalid 'cpu' setting for task"},
		{"task cpu fractional units", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "0.1 vCPU" }, ecs.CodeInvalidParameter, "Invalid 'cpu' setting for task"},
		{"task cpu exponent", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "1e1 vCPU" }, ecs.CodeInvalidParameter, "Invalid 'cpu' setting for task"},
		{"task cpu too small", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "64" }, ecs.CodeClient, "outside the supported range"},
		{"task memory unparsable", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Memory = "2 TB" }, ecs.CodeInvalidParameter, "Invalid 'memory' setting for task"},
		{"container memory above task", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Memory = "100" }, ecs.CodeClient, "The 'memory' setting for container 'app' is greater than for the task."},
		{"reservations above task", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.Memory = "100" }, c0(func(c *ecs.ContainerDefinition) { c.Memory = nil; c.MemoryReservation = tdPtr[int32](101) })), ecs.CodeClient, "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'."},
		{"cpu sum above task", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "256" }, c0(func(c *ecs.ContainerDefinition) { c.Cpu = 512 })), ecs.CodeClient, "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."},
		{"containerPort missing", false, c0(func(c *ecs.ContainerDefinition) { c.PortMappings = []ecs.PortMapping{{HostPort: tdPtr[int32](80)}} }), ecs.CodeClient, "Invalid 'containerPort' setting for container 'app'."},
		{"containerPort out of range", false, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](70000)}}
		}), ecs.CodeClient, "Invalid 'containerPort' setting for container 'app'."},
		{"hostPort out of range", false, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80), HostPort: tdPtr[int32](70000)}}
		}), ecs.CodeClient, "Invalid 'hostPort' setting for container 'app'."},
		{"awsvpc host port differs", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = ecs.NetworkModeAwsvpc }, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80), HostPort: tdPtr[int32](8080)}}
		})), ecs.CodeClient, "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
		{"host host port differs", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = ecs.NetworkModeHost }, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80), HostPort: tdPtr[int32](8080)}}
		})), ecs.CodeClient, "When networkMode=host, the host ports and container ports in port mappings must match."},
		{"ports with none mode", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = ecs.NetworkModeNone }, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80)}}
		})), ecs.CodeClient, "networkMode=none"},
		{"duplicate container port", false, c0(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80)}, {ContainerPort: tdPtr[int32](80), Protocol: ecs.TransportProtocolTcp}}
		}), ecs.CodeClient, "mapped more than once"},
		{"bad port range", false, c0(func(c *ecs.ContainerDefinition) { c.PortMappings = []ecs.PortMapping{{ContainerPortRange: "90-80"}} }), ecs.CodeClient, "containerPortRange"},
		{"hostname in awsvpc", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = ecs.NetworkModeAwsvpc }, c0(func(c *ecs.ContainerDefinition) { c.Hostname = "h" })), ecs.CodeClient, "hostname is not supported on container when networkMode=awsvpc."},
		{"links outside bridge", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = ecs.NetworkModeHost },
			second(ecs.ContainerDefinition{Name: "db", Image: "busybox", Memory: tdPtr[int32](64)}),
			c0(func(c *ecs.ContainerDefinition) { c.Links = []string{"db"} })), ecs.CodeClient, "links are not supported"},
		{"link to unknown container", false, c0(func(c *ecs.ContainerDefinition) { c.Links = []string{"db:database"} }), ecs.CodeClient, "'links' setting for container 'app'"},
		{"mount of undeclared volume", false, c0(func(c *ecs.ContainerDefinition) {
			c.MountPoints = []ecs.MountPoint{{SourceVolume: "data", ContainerPath: "/d"}}
		}), ecs.CodeClient, "sourceVolume 'data'"},
		{"mount without path", false, all(func(r *ecs.RegisterTaskDefinitionRequest) { r.Volumes = []ecs.Volume{{Name: "data"}} },
			c0(func(c *ecs.ContainerDefinition) { c.MountPoints = []ecs.MountPoint{{SourceVolume: "data"}} })), ecs.CodeClient, "containerPath are required"},
		{"duplicate volume", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Volumes = []ecs.Volume{{Name: "d"}, {Name: "d"}} }, ecs.CodeClient, "more than once"},
		{"volume name invalid", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Volumes = []ecs.Volume{{Name: "a b"}} }, ecs.CodeClient, "volume name"},
		{"volumesFrom unknown", false, c0(func(c *ecs.ContainerDefinition) { c.VolumesFrom = []ecs.VolumeFrom{{SourceContainer: "other"}} }), ecs.CodeClient, "sourceContainer 'other'"},
		{"volumesFrom self", false, c0(func(c *ecs.ContainerDefinition) { c.VolumesFrom = []ecs.VolumeFrom{{SourceContainer: "app"}} }), ecs.CodeClient, "sourceContainer 'app'"},
		{"dependsOn unknown", false, c0(func(c *ecs.ContainerDefinition) {
			c.DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionSTART}}
		}), ecs.CodeClient, "'dependsOn' setting for container 'app'"},
		{"dependsOn self", false, c0(func(c *ecs.ContainerDefinition) {
			c.DependsOn = []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionSTART}}
		}), ecs.CodeClient, "cannot depend on itself"},
		{"dependsOn HEALTHY without health check", false, all(second(ecs.ContainerDefinition{Name: "db", Image: "busybox", Memory: tdPtr[int32](64)}),
			c0(func(c *ecs.ContainerDefinition) {
				c.DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionHEALTHY}}
			})), ecs.CodeClient, "needs a healthCheck on container 'db'"},
		{"dependsOn COMPLETE on essential", false, all(second(ecs.ContainerDefinition{Name: "init", Image: "busybox", Memory: tdPtr[int32](64)}),
			c0(func(c *ecs.ContainerDefinition) {
				c.DependsOn = []ecs.ContainerDependency{{ContainerName: "init", Condition: ecs.ContainerConditionCOMPLETE}}
			})), ecs.CodeClient, "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
		{"dependsOn cycle", false, all(second(ecs.ContainerDefinition{Name: "db", Image: "busybox", Memory: tdPtr[int32](64),
			DependsOn: []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionSTART}}}),
			c0(func(c *ecs.ContainerDefinition) {
				c.DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionSTART}}
			})), ecs.CodeClient, "form a cycle"},
		{"health check command", false, c0(func(c *ecs.ContainerDefinition) { c.HealthCheck = &ecs.HealthCheck{Command: []string{"curl", "x"}} }), ecs.CodeClient, "CMD or CMD-SHELL"},
		{"health check bare CMD", false, c0(func(c *ecs.ContainerDefinition) { c.HealthCheck = &ecs.HealthCheck{Command: []string{"CMD"}} }), ecs.CodeClient, "CMD or CMD-SHELL"},
		{"health check interval", false, c0(func(c *ecs.ContainerDefinition) { h := *hc; h.Interval = tdPtr[int32](4); c.HealthCheck = &h }), ecs.CodeClient, "interval must be between 5 and 300"},
		{"health check timeout", false, c0(func(c *ecs.ContainerDefinition) { h := *hc; h.Timeout = tdPtr[int32](121); c.HealthCheck = &h }), ecs.CodeClient, "timeout must be between 2 and 120"},
		{"health check retries", false, c0(func(c *ecs.ContainerDefinition) { h := *hc; h.Retries = tdPtr[int32](0); c.HealthCheck = &h }), ecs.CodeClient, "retries must be between 1 and 10"},
		{"health check startPeriod", false, c0(func(c *ecs.ContainerDefinition) { h := *hc; h.StartPeriod = tdPtr[int32](301); c.HealthCheck = &h }), ecs.CodeClient, "startPeriod must be between 0 and 300"},
		{"awslogs options", false, c0(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g"}}
		}), ecs.CodeClient, "Log driver awslogs requires options: awslogs-region"},
		{"firelens driver without router", false, c0(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwsfirelens}
		}), ecs.CodeClient, "firelensConfiguration"},
		{"environment name empty", false, c0(func(c *ecs.ContainerDefinition) { c.Environment = []ecs.KeyValuePair{{Value: "v"}} }), ecs.CodeClient, "'environment' setting for container 'app'"},
		{"ulimit soft above hard", false, c0(func(c *ecs.ContainerDefinition) {
			c.Ulimits = []ecs.Ulimit{{Name: "nofile", SoftLimit: 10, HardLimit: 5}}
		}), ecs.CodeClient, "'ulimits' setting for container 'app'"},
		{"swappiness", false, c0(func(c *ecs.ContainerDefinition) {
			c.LinuxParameters = &ecs.LinuxParameters{Swappiness: tdPtr[int32](101)}
		}), ecs.CodeClient, "swappiness"},
		{"placement without expression", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.PlacementConstraints = []ecs.TaskDefinitionPlacementConstraint{{Type: "memberOf"}}
		}, ecs.CodeClient, "placementConstraints"},
		{"ephemeral storage", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.EphemeralStorage = &ecs.EphemeralStorage{SizeInGiB: 20} }, ecs.CodeClient, "ephemeralStorage"},
		{"proxy container unknown", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.ProxyConfiguration = &ecs.ProxyConfiguration{ContainerName: "envoy"}
		}, ecs.CodeClient, "proxyConfiguration"},
		{"tag aws prefix", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Tags = []ecs.Tag{{Key: "aws:x", Value: "v"}} }, ecs.CodeInvalidParameter, "aws:"},
		{"tag empty key", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Tags = []ecs.Tag{{Value: "v"}} }, ecs.CodeInvalidParameter, "key is required"},
		{"tag key too long", false, func(r *ecs.RegisterTaskDefinitionRequest) { r.Tags = []ecs.Tag{{Key: strings.Repeat("k", 129)}} }, ecs.CodeInvalidParameter, "128"},
		{"tag value too long", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.Tags = []ecs.Tag{{Key: "k", Value: strings.Repeat("v", 257)}}
		}, ecs.CodeInvalidParameter, "256"},
		{"too many tags", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			for i := range 51 {
				r.Tags = append(r.Tags, ecs.Tag{Key: "k" + strings.Repeat("x", i)})
			}
		}, ecs.CodeInvalidParameter, "at most 50"},
		{"external with awsvpc", false, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.NetworkMode = ecs.NetworkModeAwsvpc
			r.RequiresCompatibilities = []ecs.Compatibility{ecs.CompatibilityEXTERNAL}
		}, ecs.CodeClient, "EXTERNAL"},

		// Fargate.
		{"fargate bridge", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.NetworkMode = "" }, ecs.CodeClient, "Fargate only supports network mode \u2018awsvpc\u2019."},
		{"fargate no cpu", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu = "" }, ecs.CodeClient, "Fargate requires that 'cpu' be defined at the task level."},
		{"fargate no memory", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.Memory = "" }, ecs.CodeClient, "Fargate requires that 'memory' be defined at the task level."},
		{"fargate bad size", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu, r.Memory = "1024", "1024" }, ecs.CodeClient, "No Fargate configuration exists for given values: 1024 CPU, 1024 memory."},
		{"fargate 8 vCPU step", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.Cpu, r.Memory = "8 vCPU", "17408" }, ecs.CodeClient, "No Fargate configuration exists for given values: 8192 CPU, 17408 memory."},
		{"fargate ipcMode", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.IpcMode = ecs.IpcModeTask }, ecs.CodeClient, "Tasks using the Fargate launch type do not support ipcMode."},
		{"fargate pidMode host", true, func(r *ecs.RegisterTaskDefinitionRequest) { r.PidMode = ecs.PidModeHost }, ecs.CodeClient, "do not support pidMode 'host'"},
		{"fargate placement", true, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.PlacementConstraints = []ecs.TaskDefinitionPlacementConstraint{{Type: "memberOf", Expression: "attribute:x == y"}}
		}, ecs.CodeClient, "placementConstraints"},
		{"fargate privileged", true, c0(func(c *ecs.ContainerDefinition) { c.Privileged = tdPtr(true) }), ecs.CodeClient, "'privileged' (container 'app')"},
		{"fargate dockerSecurityOptions", true, c0(func(c *ecs.ContainerDefinition) { c.DockerSecurityOptions = []string{"no-new-privileges"} }), ecs.CodeClient, "dockerSecurityOptions"},
		{"fargate devices", true, c0(func(c *ecs.ContainerDefinition) {
			c.LinuxParameters = &ecs.LinuxParameters{Devices: []ecs.Device{{HostPath: "/dev/fuse"}}}
		}), ecs.CodeClient, "linuxParameters.devices"},
		{"fargate sharedMemorySize", true, c0(func(c *ecs.ContainerDefinition) {
			c.LinuxParameters = &ecs.LinuxParameters{SharedMemorySize: tdPtr[int32](64)}
		}), ecs.CodeClient, "sharedMemorySize"},
		{"fargate capability", true, c0(func(c *ecs.ContainerDefinition) {
			c.LinuxParameters = &ecs.LinuxParameters{Capabilities: &ecs.KernelCapabilities{Add: []string{"NET_ADMIN"}}}
		}), ecs.CodeClient, "SYS_PTRACE"},
		{"fargate host sourcePath", true, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.Volumes = []ecs.Volume{{Name: "d", Host: &ecs.HostVolumeProperties{SourcePath: "/var/log"}}}
		}, ecs.CodeClient, "Fargate compatible task definitions do not support sourcePath"},
		{"fargate docker volume", true, func(r *ecs.RegisterTaskDefinitionRequest) {
			r.Volumes = []ecs.Volume{{Name: "d", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Driver: "local"}}}
		}, ecs.CodeClient, "dockerVolumeConfiguration"},
		{"fargate log driver", true, c0(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverJsonFile}
		}), ecs.CodeClient, "log drivers"},
		{"fargate container memory above task", true, c0(func(c *ecs.ContainerDefinition) { c.Memory = tdPtr[int32](1024) }), ecs.CodeClient, "greater than for the task"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tdBase()
			if tc.fargate {
				r = tdFargate()
			}
			tc.mut(r)
			_, err := normalizeTaskDefinition(r)
			if err == nil {
				t.Fatalf("accepted; want %s containing %q", tc.code, tc.msg)
			}
			if got := tdCode(err); got != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v; want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestTaskDefValidateNormalises(t *testing.T) {
	t.Run("cpu and memory units", func(t *testing.T) {
		for _, tc := range []struct{ cpu, mem, wantCPU, wantMem string }{
			{"1 vCPU", "2 GB", "1024", "2048"},
			{"0.25 vCPU", "0.5 GB", "256", "512"},
			{"0.5vcpu", "0.5GB", "512", "512"},
			{" 2 VCPU ", "3gb", "2048", "3072"},
			{"1024", "2048", "1024", "2048"},
		} {
			r := tdBase()
			r.Cpu, r.Memory = tc.cpu, tc.mem
			d, err := normalizeTaskDefinition(r)
			if err != nil {
				t.Fatalf("%q/%q: %v", tc.cpu, tc.mem, err)
			}
			if d.Cpu != tc.wantCPU || d.Memory != tc.wantMem {
				t.Errorf("%q/%q -> %q/%q; want %q/%q", tc.cpu, tc.mem, d.Cpu, d.Memory, tc.wantCPU, tc.wantMem)
			}
		}
	})
	t.Run("container defaults", func(t *testing.T) {
		d, err := normalizeTaskDefinition(tdBase())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(d.ContainerDefinitions[0])
		want := `{"cpu":0,"environment":[],"essential":true,"image":"busybox","memory":128,"mountPoints":[],"name":"app","portMappings":[],"systemControls":[],"volumesFrom":[]}`
		if string(b) != want {
			t.Fatalf("container:\n got %s\nwant %s", b, want)
		}
		if d.NetworkMode != "" {
			t.Errorf("networkMode %q; ECS leaves it unset when not given", d.NetworkMode)
		}
		if !slices.Equal(d.Compatibilities, []ecs.Compatibility{"EXTERNAL", "EC2"}) {
			t.Errorf("compatibilities %v", d.Compatibilities)
		}
		if d.Volumes == nil || d.PlacementConstraints == nil || d.RequiresAttributes == nil || len(d.RequiresAttributes) != 0 {
			t.Errorf("volumes %v placementConstraints %v requiresAttributes %v: want present and empty", d.Volumes, d.PlacementConstraints, d.RequiresAttributes)
		}
	})
	t.Run("port mappings", func(t *testing.T) {
		for _, tc := range []struct {
			mode     ecs.NetworkMode
			host     *int32
			wantHost int32
		}{
			{"", nil, 0}, {ecs.NetworkModeBridge, tdPtr[int32](8080), 8080}, {ecs.NetworkModeAwsvpc, nil, 80},
			{ecs.NetworkModeAwsvpc, tdPtr[int32](80), 80}, {ecs.NetworkModeHost, nil, 80},
		} {
			r := tdBase()
			r.NetworkMode = tc.mode
			r.ContainerDefinitions[0].PortMappings = []ecs.PortMapping{{ContainerPort: tdPtr[int32](80), HostPort: tc.host}}
			d, err := normalizeTaskDefinition(r)
			if err != nil {
				t.Fatalf("%s: %v", tc.mode, err)
			}
			pm := d.ContainerDefinitions[0].PortMappings[0]
			if pm.HostPort == nil || *pm.HostPort != tc.wantHost || pm.Protocol != ecs.TransportProtocolTcp {
				t.Errorf("%s: hostPort %v protocol %q; want %d tcp", tc.mode, pm.HostPort, pm.Protocol, tc.wantHost)
			}
			if r.ContainerDefinitions[0].PortMappings[0].HostPort != tc.host {
				t.Errorf("%s: the request was changed", tc.mode)
			}
		}
	})
	t.Run("health check defaults", func(t *testing.T) {
		r := tdBase()
		r.ContainerDefinitions[0].HealthCheck = &ecs.HealthCheck{Command: []string{"CMD-SHELL", "true"}}
		d, err := normalizeTaskDefinition(r)
		if err != nil {
			t.Fatal(err)
		}
		h := d.ContainerDefinitions[0].HealthCheck
		if *h.Interval != 30 || *h.Timeout != 5 || *h.Retries != 3 || h.StartPeriod != nil {
			t.Errorf("health check %+v", h)
		}
	})
	t.Run("fargate sizes", func(t *testing.T) {
		ok := map[string][]string{
			"256": {"512", "1024", "2048"}, "512": {"1024", "4096"}, "1024": {"2048", "8192"},
			"2048": {"4096", "16384"}, "4096": {"8192", "30720"}, "8192": {"16384", "61440"}, "16384": {"32768", "122880"},
		}
		for cpu, mems := range ok {
			for _, mem := range mems {
				r := tdFargate()
				r.Cpu, r.Memory = cpu, mem
				d, err := normalizeTaskDefinition(r)
				if err != nil {
					t.Fatalf("%s/%s: %v", cpu, mem, err)
				}
				if !slices.Equal(d.Compatibilities, []ecs.Compatibility{"EC2", "FARGATE"}) {
					t.Errorf("%s/%s: compatibilities %v", cpu, mem, d.Compatibilities)
				}
			}
		}
		for _, bad := range [][2]string{{"256", "4096"}, {"512", "512"}, {"4096", "31744"}, {"8192", "18432"}, {"16384", "36864"}, {"128", "512"}} {
			r := tdFargate()
			r.Cpu, r.Memory = bad[0], bad[1]
			if _, err := normalizeTaskDefinition(r); err == nil || !strings.Contains(err.Error(), "No Fargate configuration exists") {
				t.Errorf("%v: got %v", bad, err)
			}
		}
	})
	t.Run("fargate compatible without asking", func(t *testing.T) {
		r := tdFargate()
		r.RequiresCompatibilities = nil
		r.ContainerDefinitions[0].Memory = tdPtr[int32](256)
		r.ContainerDefinitions[0].DnsServers = []string{} // empty settings do not count
		r.Volumes = []ecs.Volume{{Name: "scratch"}}
		d, err := normalizeTaskDefinition(r)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Compatibilities, []ecs.Compatibility{"EC2", "FARGATE"}) {
			t.Errorf("compatibilities %v", d.Compatibilities)
		}
		if d.Volumes[0].Host == nil || d.Volumes[0].Host.SourcePath != "" {
			t.Errorf("bind volume %+v; want an empty host block", d.Volumes[0])
		}
		if d.RequiresCompatibilities != nil {
			t.Errorf("requiresCompatibilities %v; want absent", d.RequiresCompatibilities)
		}
		// An awsvpc definition that Fargate cannot run is EC2-only.
		r.Memory = "1000"
		d, err = normalizeTaskDefinition(r)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Compatibilities, []ecs.Compatibility{"EC2"}) {
			t.Errorf("compatibilities %v", d.Compatibilities)
		}
	})
	t.Run("fargate allows tmpfs and bind mounts", func(t *testing.T) {
		r := tdFargate()
		r.Volumes = []ecs.Volume{{Name: "scratch", Host: &ecs.HostVolumeProperties{}}}
		r.ContainerDefinitions[0].MountPoints = []ecs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/s"}}
		r.ContainerDefinitions[0].LinuxParameters = &ecs.LinuxParameters{Tmpfs: []ecs.Tmpfs{{ContainerPath: "/t", Size: 64}},
			Capabilities: &ecs.KernelCapabilities{Add: []string{"SYS_PTRACE"}}}
		if _, err := normalizeTaskDefinition(r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("dependencies", func(t *testing.T) {
		r := tdBase()
		r.ContainerDefinitions = append(r.ContainerDefinitions,
			ecs.ContainerDefinition{Name: "init", Image: "busybox", Memory: tdPtr[int32](16), Essential: tdPtr(false)},
			ecs.ContainerDefinition{Name: "db", Image: "busybox", Memory: tdPtr[int32](16), HealthCheck: &ecs.HealthCheck{Command: []string{"CMD", "true"}}})
		r.ContainerDefinitions[0].DependsOn = []ecs.ContainerDependency{
			{ContainerName: "init", Condition: ecs.ContainerConditionSUCCESS},
			{ContainerName: "db", Condition: ecs.ContainerConditionHEALTHY},
		}
		r.ContainerDefinitions[0].Links = []string{"db:database"}
		if _, err := normalizeTaskDefinition(r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("requires attributes", func(t *testing.T) {
		r := tdFargate()
		r.ExecutionRoleArn = "arn:aws:iam::123456789012:role/exec"
		r.TaskRoleArn = "arn:aws:iam::123456789012:role/task"
		c := &r.ContainerDefinitions[0]
		c.Image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"
		c.HealthCheck = &ecs.HealthCheck{Command: []string{"CMD-SHELL", "true"}}
		c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g", "awslogs-region": "us-east-1"}}
		c.Secrets = []ecs.Secret{{Name: "A", ValueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a"}, {Name: "B", ValueFrom: "/p/b"}}
		d, err := normalizeTaskDefinition(r)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range d.RequiresAttributes {
			got = append(got, a.Name)
		}
		for _, want := range []string{
			"com.amazonaws.ecs.capability.logging-driver.awslogs", "com.amazonaws.ecs.capability.docker-remote-api.1.19",
			"ecs.capability.execution-role-awslogs", "com.amazonaws.ecs.capability.docker-remote-api.1.18",
			"com.amazonaws.ecs.capability.docker-remote-api.1.24", "ecs.capability.container-health-check",
			"com.amazonaws.ecs.capability.ecr-auth", "ecs.capability.execution-role-ecr-pull",
			"com.amazonaws.ecs.capability.task-iam-role", "ecs.capability.task-eni",
			"ecs.capability.secrets.asm.environment-variables", "ecs.capability.secrets.ssm.environment-variables",
		} {
			if !slices.Contains(got, want) {
				t.Errorf("requiresAttributes lacks %s: %v", want, got)
			}
		}
		if len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
			t.Errorf("duplicates in %v", got)
		}
	})
}

// FuzzValidateTaskDefinition feeds arbitrary bodies through the request path
// (decode, model validation, ECS validation). It must never panic, every
// refusal must be a typed client error, and an accepted definition must be
// accepted again unchanged when registered as returned.
func FuzzValidateTaskDefinition(f *testing.F) {
	seeds := []string{
		`{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":128}]}`,
		`{"family":"f","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"0.25 vCPU","memory":"0.5 GB","containerDefinitions":[{"name":"a","image":"i","portMappings":[{"containerPort":80}]}]}`,
		`{"family":"x","cpu":"1 vcpu","memory":"2GB","networkMode":"bridge","volumes":[{"name":"v","host":{"sourcePath":"/tmp"}}],"containerDefinitions":[{"name":"a","image":"i","links":["b:c"],"mountPoints":[{"sourceVolume":"v","containerPath":"/v"}],"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"udp"}]},{"name":"b","image":"i","essential":false,"memoryReservation":64,"dependsOn":[{"containerName":"a","condition":"START"}],"healthCheck":{"command":["CMD","true"],"interval":10}}]}`,
		`{"family":"y","networkMode":"host","containerDefinitions":[{"name":"a","image":"i","memory":6,"portMappings":[{"containerPortRange":"1-2"}]}]}`,
		`{"family":"z","containerDefinitions":[{"name":"a","image":"i","memory":64,"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"r"}},"ulimits":[{"name":"nofile","softLimit":1,"hardLimit":2}]}],"tags":[{"key":"k","value":"v"}]}`,
		`{"family":"w","containerDefinitions":[{"name":"a","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"HEALTHY"}]}]}`,
		`{"family":"","containerDefinitions":null}`,
		`[]`, `{"cpu":1}`, `{"containerDefinitions":[{"portMappings":[{"containerPort":-1}]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in ecs.RegisterTaskDefinitionRequest
		if err := decodeInput(body, &in); err != nil {
			return
		}
		if err := in.Validate(); err != nil {
			return
		}
		d, err := normalizeTaskDefinition(&in)
		if err != nil {
			if tdCode(err) == "" {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !slices.Contains(d.Compatibilities, ecs.CompatibilityEC2) || d.RequiresAttributes == nil {
			t.Fatalf("compatibilities %v requiresAttributes %v", d.Compatibilities, d.RequiresAttributes)
		}
		for _, c := range d.ContainerDefinitions {
			if c.Essential == nil {
				t.Fatalf("container %s: essential not filled", c.Name)
			}
			for _, pm := range c.PortMappings {
				if pm.Protocol == "" || (pm.ContainerPortRange == "" && pm.HostPort == nil) {
					t.Fatalf("container %s: port mapping not completed: %+v", c.Name, pm)
				}
			}
		}
		again := ecs.RegisterTaskDefinitionRequest{
			Family: d.Family, ContainerDefinitions: d.ContainerDefinitions, Cpu: d.Cpu, Memory: d.Memory,
			NetworkMode: d.NetworkMode, IpcMode: d.IpcMode, PidMode: d.PidMode, Volumes: d.Volumes,
			PlacementConstraints: d.PlacementConstraints, RequiresCompatibilities: d.RequiresCompatibilities,
			TaskRoleArn: d.TaskRoleArn, ExecutionRoleArn: d.ExecutionRoleArn, ProxyConfiguration: d.ProxyConfiguration,
			RuntimePlatform: d.RuntimePlatform, EphemeralStorage: d.EphemeralStorage, InferenceAccelerators: d.InferenceAccelerators,
			EnableFaultInjection: d.EnableFaultInjection, Tags: in.Tags,
		}
		d2, err := normalizeTaskDefinition(&again)
		if err != nil {
			t.Fatalf("normalised definition refused: %v", err)
		}
		if !reflect.DeepEqual(d, d2) {
			a, _ := json.Marshal(d)
			b, _ := json.Marshal(d2)
			t.Fatalf("normalising is not idempotent:\n%s\n%s", a, b)
		}
	})
}
