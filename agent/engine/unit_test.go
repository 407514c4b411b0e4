package engine

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

func i32(n int32) *int32 { return &n }
func boolp(b bool) *bool { return &b }

func TestNextStatus(t *testing.T) {
	none, created, net := facts{}, facts{created: true}, facts{network: true}
	for _, tc := range []struct {
		known, desired string
		f              facts
		want           string
	}{
		{StatusProvisioning, StatusRunning, none, StatusPending},
		{StatusPending, StatusRunning, none, StatusActivating},
		{StatusActivating, StatusRunning, created, StatusRunning},
		{StatusRunning, StatusRunning, created, ""},
		{StatusRunning, StatusStopped, created, StatusDeactivating},
		{StatusDeactivating, StatusStopped, created, StatusStopping},
		{StatusStopping, StatusStopped, created, StatusDeprovisioning},
		{StatusDeprovisioning, StatusStopped, created, StatusStopped},
		{StatusStopped, StatusStopped, created, ""},
		{StatusStopped, StatusRunning, created, ""}, // never backwards
		// Nothing created: nothing to deactivate or stop.
		{StatusPending, StatusStopped, none, StatusStopped},
		{StatusProvisioning, StatusStopped, none, StatusStopped},
		{StatusPending, StatusStopped, net, StatusDeprovisioning},
		{StatusPending, StatusStopped, created, StatusDeactivating},
		{StatusActivating, StatusStopped, created, StatusDeactivating},
		{"BOGUS", StatusRunning, none, ""},
	} {
		if got := nextStatus(tc.known, tc.desired, tc.f); got != tc.want {
			t.Errorf("nextStatus(%s, %s, %+v) = %q, want %q", tc.known, tc.desired, tc.f, got, tc.want)
		}
	}
	// Whatever the path, the known status only moves forward.
	for from := range transitions {
		for _, d := range []string{StatusRunning, StatusStopped} {
			for _, f := range []facts{none, created, net} {
				if n := nextStatus(from, d, f); n != "" && statusRank[n] <= statusRank[from] {
					t.Errorf("%s → %s goes backwards", from, n)
				}
			}
		}
	}
}

func specFor(t *testing.T, sc specContext, d ecs.ContainerDefinition, o *ecs.ContainerOverride) runtime.ContainerSpec {
	t.Helper()
	c := &container{name: d.Name, token: "tok-1", dockerName: "ecs-fam-2-" + d.Name + "-x", essential: true, stopAfter: 30 * time.Second}
	c.def = effectiveDefinition(d, o)
	s, err := buildSpec(sc, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseContext() specContext {
	return specContext{
		taskARN: "arn:aws:ecs:us-west-2:1:task/c/abc", taskID: "abc", cluster: "c", family: "fam", revision: 2,
		instanceARN: "arn:inst", region: "us-west-2", networkMode: "bridge", tmdsBase: "http://172.17.0.1:51679",
		idsByName: map[string]string{"src": "srcid"},
		volumes: []ecs.Volume{
			{Name: "host", Host: &ecs.HostVolumeProperties{SourcePath: "/srv/data"}},
			{Name: "scratch"},
			{Name: "shared", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Scope: ecs.ScopeShared}},
		},
	}
}

func TestBuildSpecBridge(t *testing.T) {
	d := ecs.ContainerDefinition{
		Name: "app", Image: "img", EntryPoint: []string{"/ep"}, Command: []string{"def"},
		Environment:  []ecs.KeyValuePair{{Name: "A", Value: "1"}, {Name: "AWS_REGION", Value: "mine"}},
		DockerLabels: map[string]string{"x": "y", LabelTaskARN: "spoofed"},
		Memory:       i32(128), MemoryReservation: i32(64),
		Ulimits:         []ecs.Ulimit{{Name: "nofile", SoftLimit: 10, HardLimit: 20}},
		LinuxParameters: &ecs.LinuxParameters{InitProcessEnabled: boolp(true), Capabilities: &ecs.KernelCapabilities{Add: []string{"NET_ADMIN"}}},
		Hostname:        "h", ExtraHosts: []ecs.HostEntry{{Hostname: "db", IpAddress: "10.0.0.1"}},
		DnsServers: []string{"1.1.1.1"}, ReadonlyRootFilesystem: boolp(true),
		PortMappings: []ecs.PortMapping{{ContainerPort: i32(80)}, {ContainerPort: i32(53), HostPort: i32(5353), Protocol: "udp"},
			{ContainerPortRange: "9000-9001"}},
		MountPoints: []ecs.MountPoint{{SourceVolume: "host", ContainerPath: "/h", ReadOnly: boolp(true)},
			{SourceVolume: "scratch", ContainerPath: "/s"}, {SourceVolume: "shared", ContainerPath: "/sh"}},
		VolumesFrom: []ecs.VolumeFrom{{SourceContainer: "src", ReadOnly: boolp(true)}},
		HealthCheck: &ecs.HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: i32(7)},
	}
	o := &ecs.ContainerOverride{Name: "app", Command: []string{"over"}, Cpu: i32(0),
		Environment: []ecs.KeyValuePair{{Name: "A", Value: "2"}, {Name: "B", Value: "3"}}}
	s := specFor(t, baseContext(), d, o)

	if !reflect.DeepEqual(s.Command, []string{"over"}) || !reflect.DeepEqual(s.Entrypoint, []string{"/ep"}) {
		t.Errorf("command %v entrypoint %v", s.Command, s.Entrypoint)
	}
	wantEnv := []string{
		"ECS_CONTAINER_METADATA_URI=http://172.17.0.1:51679/v3/tok-1",
		"ECS_CONTAINER_METADATA_URI_V4=http://172.17.0.1:51679/v4/tok-1",
		"ECS_AGENT_URI=http://172.17.0.1:51679/api/tok-1",
		"AWS_EXECUTION_ENV=AWS_ECS_EC2", "AWS_REGION=mine", "AWS_DEFAULT_REGION=us-west-2", "A=2", "B=3",
	}
	if !reflect.DeepEqual(s.Env, wantEnv) {
		t.Errorf("env\n got %q\nwant %q", s.Env, wantEnv)
	}
	if s.CPUShares != 2 || s.MemoryLimitMiB != 128 || s.MemoryReservationMiB != 64 {
		t.Errorf("cpu %d mem %d/%d", s.CPUShares, s.MemoryLimitMiB, s.MemoryReservationMiB)
	}
	for k, v := range map[string]string{"x": "y", LabelTaskARN: "arn:aws:ecs:us-west-2:1:task/c/abc", LabelContainer: "app",
		LabelFamily: "fam", LabelRevision: "2", LabelCluster: "c", LabelManaged: "true", LabelInstance: "arn:inst",
		labelToken: "tok-1", labelEssential: "true", labelStopTimeout: "30", labelKind: kindContainer} {
		if s.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, s.Labels[k], v)
		}
	}
	if s.NetworkMode != "bridge" || s.Hostname != "h" || !reflect.DeepEqual(s.ExtraHosts, []string{"db:10.0.0.1"}) ||
		!reflect.DeepEqual(s.DNSServers, []string{"1.1.1.1"}) || !s.ReadonlyRootfs || !s.Init || s.CapAdd[0] != "NET_ADMIN" {
		t.Errorf("spec = %+v", s)
	}
	wantPorts := []runtime.PortBinding{{ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 53, HostPort: 5353, Protocol: "udp"},
		{ContainerPort: 9000, Protocol: "tcp"}, {ContainerPort: 9001, Protocol: "tcp"}}
	if !reflect.DeepEqual(s.PortBindings, wantPorts) {
		t.Errorf("ports %+v", s.PortBindings)
	}
	wantMounts := []runtime.Mount{
		{Type: runtime.MountBind, Source: "/srv/data", Target: "/h", ReadOnly: true},
		{Type: runtime.MountVolume, Source: "ecsd-abc-scratch", Target: "/s"},
		{Type: runtime.MountVolume, Source: "shared", Target: "/sh"},
	}
	if !reflect.DeepEqual(s.Mounts, wantMounts) || !reflect.DeepEqual(s.VolumesFrom, []string{"srcid:ro"}) {
		t.Errorf("mounts %+v volumesFrom %v", s.Mounts, s.VolumesFrom)
	}
	if h := s.HealthCheck; h == nil || h.Interval != 7*time.Second || h.Timeout != 5*time.Second || h.Retries != 3 || h.Test[0] != "CMD-SHELL" {
		t.Errorf("health %+v", s.HealthCheck)
	}
	if !reflect.DeepEqual(s.Ulimits, []runtime.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}}) {
		t.Errorf("ulimits %+v", s.Ulimits)
	}
}

func TestBuildSpecAwsvpc(t *testing.T) {
	sc := baseContext()
	sc.networkMode, sc.pauseID, sc.attachment, sc.tmdsBase = "awsvpc", "pauseid", "att-1", ""
	d := ecs.ContainerDefinition{Name: "app", Image: "img", Cpu: 512, Hostname: "h", DnsServers: []string{"1.1.1.1"},
		PortMappings: []ecs.PortMapping{{ContainerPort: i32(80)}}}
	s := specFor(t, sc, d, nil)
	if s.NetworkMode != "container:pauseid" || s.Hostname != "" || s.DNSServers != nil || s.PortBindings != nil || s.CPUShares != 512 {
		t.Errorf("spec = %+v", s)
	}
	if s.Labels[labelPauseID] != "pauseid" || s.Labels[labelAttachment] != "att-1" {
		t.Errorf("labels %v", s.Labels)
	}
	for _, e := range s.Env {
		if strings.HasPrefix(e, "ECS_CONTAINER_METADATA_URI") {
			t.Errorf("metadata variable without an endpoint: %s", e)
		}
	}
}

func TestBuildSpecErrors(t *testing.T) {
	sc := baseContext()
	for _, d := range []ecs.ContainerDefinition{
		{Name: "a", Image: "i", MountPoints: []ecs.MountPoint{{SourceVolume: "nope", ContainerPath: "/x"}}},
		{Name: "a", Image: "i", VolumesFrom: []ecs.VolumeFrom{{SourceContainer: "notcreated"}}},
		{Name: "a", Image: "i", PortMappings: []ecs.PortMapping{{ContainerPortRange: "9-1"}}},
	} {
		c := &container{name: d.Name, def: d}
		if _, err := buildSpec(sc, c); err == nil {
			t.Errorf("%+v: no error", d)
		}
	}
}

func TestDependencies(t *testing.T) {
	defs := []ecs.ContainerDefinition{
		{Name: "a", DependsOn: []ecs.ContainerDependency{{ContainerName: "b", Condition: ecs.ContainerConditionSTART}}},
		{Name: "b", VolumesFrom: []ecs.VolumeFrom{{SourceContainer: "a"}}},
	}
	if err := checkDependencies(defs); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	defs[1].VolumesFrom = nil
	if err := checkDependencies(defs); err != nil {
		t.Error(err)
	}
	defs[0].DependsOn[0].ContainerName = "zzz"
	if err := checkDependencies(defs); err == nil {
		t.Error("unknown dependency accepted")
	}

	exit := func(n int32) *int32 { return &n }
	dep := &container{name: "d"}
	c := &container{name: "c"}
	by := map[string]*container{"d": dep, "c": c}
	check := func(cond ecs.ContainerCondition, want depVerdict) {
		t.Helper()
		c.def.DependsOn = []ecs.ContainerDependency{{ContainerName: "d", Condition: cond}}
		if got, why := dependencyState(c, by); got != want {
			t.Errorf("%s with dep %+v: %v (%s), want %v", cond, *dep, got, why, want)
		}
	}
	check(ecs.ContainerConditionSTART, depWait)
	check(ecs.ContainerConditionHEALTHY, depNever) // no health check
	dep.hasHealth, dep.health = true, HealthUnknown
	check(ecs.ContainerConditionHEALTHY, depWait)
	dep.started, dep.running = true, true
	check(ecs.ContainerConditionSTART, depReady)
	check(ecs.ContainerConditionCOMPLETE, depWait)
	dep.health = HealthHealthy
	check(ecs.ContainerConditionHEALTHY, depReady)
	dep.running, dep.exited, dep.exitCode = false, true, exit(1)
	check(ecs.ContainerConditionCOMPLETE, depReady)
	check(ecs.ContainerConditionSUCCESS, depNever)
	check(ecs.ContainerConditionHEALTHY, depNever)
	dep.exitCode = exit(0)
	check(ecs.ContainerConditionSUCCESS, depReady)
}

func TestStopWaveOrder(t *testing.T) {
	mk := func(name string, deps ...string) *container {
		c := &container{name: name, running: true}
		for _, d := range deps {
			c.def.DependsOn = append(c.def.DependsOn, ecs.ContainerDependency{ContainerName: d, Condition: ecs.ContainerConditionSTART})
		}
		return c
	}
	db, app, proxy, log := mk("db"), mk("app", "db"), mk("proxy", "app"), mk("log")
	cs := []*container{db, app, proxy, log}
	by := map[string]*container{"db": db, "app": app, "proxy": proxy, "log": log}
	var waves [][]string
	for {
		w := stopWave(cs, by)
		if len(w) == 0 {
			break
		}
		var names []string
		for _, c := range w {
			names = append(names, c.name)
			c.running = false
		}
		slices.Sort(names)
		waves = append(waves, names)
	}
	want := [][]string{{"log", "proxy"}, {"app"}, {"db"}}
	if !reflect.DeepEqual(waves, want) {
		t.Errorf("waves %v, want %v", waves, want)
	}
}

func TestTaskHealth(t *testing.T) {
	tk := &task{}
	c1 := &container{essential: true, hasHealth: true, health: HealthHealthy}
	c2 := &container{essential: true}                                            // no check: does not count
	c3 := &container{essential: false, hasHealth: true, health: HealthUnhealthy} // not essential
	tk.containers = []*container{c1, c2, c3}
	if got := tk.healthStatus(); got != HealthHealthy {
		t.Errorf("health = %s", got)
	}
	c1.health = HealthUnhealthy
	if got := tk.healthStatus(); got != HealthUnhealthy {
		t.Errorf("health = %s", got)
	}
	c1.health = HealthUnknown
	if got := tk.healthStatus(); got != HealthUnknown {
		t.Errorf("health = %s", got)
	}
	tk.containers = []*container{c2}
	if got := tk.healthStatus(); got != HealthUnknown {
		t.Errorf("no health checks: %s", got)
	}
}

func TestNames(t *testing.T) {
	if got := privateDNSName("10.213.0.5", "us-east-1"); got != "ip-10-213-0-5.ec2.internal" {
		t.Error(got)
	}
	if got := privateDNSName("10.213.0.5", "eu-west-1"); got != "ip-10-213-0-5.eu-west-1.compute.internal" {
		t.Error(got)
	}
	if n := dockerName("web", 7, "~internal~ecs~pause"); !strings.HasPrefix(n, "ecs-web-7-internalecspause-") || len(n) != len("ecs-web-7-internalecspause-")+20 {
		t.Error(n)
	}
	if tok := newToken(); len(tok) < 34 || tok[32] != '-' {
		t.Error(tok)
	}
	if u := newUUID(); len(u) != 36 || u[14] != '4' {
		t.Error(u)
	}
	if got := daemonMessage(&wrapErr{"start container x", &wrapErr{"", nil}}); got == "" {
		t.Error("empty message")
	}
}

type wrapErr struct {
	msg string
	err error
}

func (e *wrapErr) Error() string {
	if e.err == nil {
		return "Error response from daemon: boom"
	}
	return e.msg + ": " + e.err.Error()
}
func (e *wrapErr) Unwrap() error { return e.err }

func TestConfigValidate(t *testing.T) {
	ok := Config{Runtime: nilRuntime{}, Reporter: nopReporter{}, InstanceArn: "i", PauseImage: "p"}
	ok.setDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.Runtime = nil },
		func(c *Config) { c.Reporter = nil },
		func(c *Config) { c.InstanceArn = "" },
		func(c *Config) { c.PauseImage = "" },
		func(c *Config) { c.AwsvpcSubnet = "10.0.0.0/30" },
		func(c *Config) { c.AwsvpcSubnet = "nope" },
		func(c *Config) { c.ImagePullBehavior = "sometimes" },
	} {
		c := ok
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

type nilRuntime struct{ runtime.Runtime }

type nopReporter struct{}

func (nopReporter) Report(agentapi.StateChange) {}
