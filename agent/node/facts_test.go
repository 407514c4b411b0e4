package node

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/api/ecs"
)

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"MemTotal:       16384000 kB\nMemFree: 1 kB\n", 16000, false},
		{"MemFree: 1 kB\nMemTotal: 2097152 kB\n", 2048, false},
		{"MemFree: 1 kB\n", 0, true},
		{"MemTotal: lots kB\n", 0, true},
		{"MemTotal: 100 MB\n", 0, true},
	} {
		got, err := ParseMemTotal(strings.NewReader(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q: got %d, %v", tc.in, got, err)
		}
	}
}

func TestMachineCapacity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(p, []byte("MemTotal: 8388608 kB\n"), 0o644) // 8 GiB
	c, err := MachineCapacity(p, -1)
	if err != nil || c.MemoryMiB != 8192-256 || c.CPU < 1024 || c.CPU%1024 != 0 {
		t.Fatalf("8 GiB: %+v %v", c, err)
	}
	os.WriteFile(p, []byte("MemTotal: 1048576 kB\n"), 0o644) // 1 GiB: 5% is less than 256 MiB
	if c, _ := MachineCapacity(p, -1); c.MemoryMiB != 1024-51 {
		t.Fatalf("1 GiB: %+v", c)
	}
	if c, _ := MachineCapacity(p, 0); c.MemoryMiB != 1024 {
		t.Fatalf("no reserve: %+v", c)
	}
	if _, err := MachineCapacity(filepath.Join(t.TempDir(), "none"), -1); err == nil {
		t.Fatal("missing meminfo accepted")
	}
}

func TestResources(t *testing.T) {
	rs := Resources(Capacity{CPU: 2048, MemoryMiB: 3000}, 51679, 52000, -1)
	byName := map[string]ecs.Resource{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	if byName["CPU"].IntegerValue != 2048 || byName["MEMORY"].IntegerValue != 3000 || byName["CPU"].Type != "INTEGER" {
		t.Fatalf("%+v", rs)
	}
	if got := byName["PORTS"].StringSetValue; !slices.Equal(got, []string{"22", "2375", "2376", "51678", "51679", "52000"}) {
		t.Fatalf("ports %v", got)
	}
	if udp, ok := byName["PORTS_UDP"]; !ok || udp.StringSetValue == nil || udp.Type != "STRINGSET" {
		t.Fatalf("udp %+v", udp)
	}
}

func TestAttributes(t *testing.T) {
	info := runtime.Info{APIVersion: "1.41", Architecture: "aarch64", LogDrivers: []string{"awslogs", "json-file", "none", "local", "syslog"}, Runtimes: []string{"runc", "runsc"}}
	attrs := Attributes(info, "us-east-1c", "ecsd.local", map[string]string{"stack": "blue", "ecs.instance-type": "override"})
	get := func(name string) (string, bool) {
		i := slices.IndexFunc(attrs, func(a ecs.Attribute) bool { return a.Name == name })
		if i < 0 {
			return "", false
		}
		return attrs[i].Value, true
	}
	want := map[string]string{
		"ecs.os-type": "linux", "ecs.os-family": "LINUX", "ecs.cpu-architecture": "arm64",
		"ecs.availability-zone": "us-east-1c", "ecs.instance-type": "override", "stack": "blue",
		"com.amazonaws.ecs.capability.docker-remote-api.1.17": "", "com.amazonaws.ecs.capability.docker-remote-api.1.41": "",
		"com.amazonaws.ecs.capability.logging-driver.awslogs": "", "com.amazonaws.ecs.capability.logging-driver.json-file": "",
		"com.amazonaws.ecs.capability.logging-driver.none": "", "ecs.capability.task-eni": "",
		"ecs.capability.container-health-check": "", "ecs.capability.container-ordering": "",
	}
	for name, v := range want {
		if got, ok := get(name); !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", name, got, ok, v)
		}
	}
	for _, absent := range []string{"com.amazonaws.ecs.capability.docker-remote-api.1.42", "com.amazonaws.ecs.capability.docker-remote-api.1.16",
		"com.amazonaws.ecs.capability.logging-driver.local", "com.amazonaws.ecs.capability.logging-driver.gelf"} {
		if _, ok := get(absent); ok {
			t.Errorf("%s advertised", absent)
		}
	}
	names := map[string]bool{}
	for _, a := range attrs {
		if names[a.Name] {
			t.Errorf("duplicate %s", a.Name)
		}
		names[a.Name] = true
	}
}

func TestVersionInfoAndParseAttributes(t *testing.T) {
	v := VersionInfo("1.2.3", "abc", runtime.Info{ServerVersion: "20.10.24+dfsg1"})
	if v.AgentVersion != "1.2.3" || v.AgentHash != "abc" || v.DockerVersion != "DockerVersion: 20.10.24" {
		t.Fatalf("%+v", v)
	}
	m, err := ParseAttributes(" stack=blue, ssd ,zone=a=b,")
	if err != nil || m["stack"] != "blue" || m["ssd"] != "" || m["zone"] != "a=b" || len(m) != 3 {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := ParseAttributes("=x"); err == nil {
		t.Fatal("nameless attribute accepted")
	}
}
