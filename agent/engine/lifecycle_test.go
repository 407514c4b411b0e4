package engine_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// mountOut adds a host volume for dir, mounted at /out in the named containers.
func mountOut(a *agentapi.TaskAssignment, dir string, names ...string) {
	a.Definition.Volumes = append(a.Definition.Volumes, ecs.Volume{Name: "out", Host: &ecs.HostVolumeProperties{SourcePath: dir}})
	for i := range a.Definition.ContainerDefinitions {
		for _, n := range names {
			if a.Definition.ContainerDefinitions[i].Name == n {
				cd := &a.Definition.ContainerDefinitions[i]
				cd.MountPoints = append(cd.MountPoints, ecs.MountPoint{SourceVolume: "out", ContainerPath: "/out"})
			}
		}
	}
}

// A bridge task with a dynamic host port: reachable through the port it
// reports, through the full lifecycle, stopped with SIGTERM.
func TestBridgeDynamicPort(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	web := busybox("web", "httpd", "-f", "-p", "8080", "-h", "/var/www")
	web.PortMappings = []ecs.PortMapping{{ContainerPort: i32(8080)}}
	// With an init process, httpd is not PID 1 and so dies of SIGTERM.
	web.LinuxParameters = &ecs.LinuxParameters{InitProcessEnabled: boolp(true)}
	a := assignment("web", ecs.NetworkModeBridge, web)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})

	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	c := container(sc, "web")
	if c.LastStatus != "RUNNING" || c.RuntimeID == "" {
		t.Fatalf("container at RUNNING: %+v", c)
	}
	if len(c.NetworkBindings) != 1 {
		t.Fatalf("networkBindings = %+v, want one", c.NetworkBindings)
	}
	nb := c.NetworkBindings[0]
	if nb.BindIP != "0.0.0.0" || *nb.ContainerPort != 8080 || nb.Protocol != "tcp" || *nb.HostPort < 32768 || *nb.HostPort > 60999 {
		t.Errorf("binding = %s %d→%d %s", nb.BindIP, *nb.HostPort, *nb.ContainerPort, nb.Protocol)
	}
	if sc.StartedAt == nil || sc.HealthStatus != "UNKNOWN" || sc.Connectivity != "CONNECTED" {
		t.Errorf("RUNNING change: startedAt=%v health=%q connectivity=%q", sc.StartedAt, sc.HealthStatus, sc.Connectivity)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", *nb.HostPort), 10*time.Second); body != "ecsd\n" {
		t.Errorf("body = %q", body)
	}

	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
	sc = h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	want := []string{"PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}
	if got := h.rec.statuses(a.TaskArn); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	c = container(sc, "web")
	// httpd dies of SIGTERM: 128+15.
	if c.LastStatus != "STOPPED" || c.ExitCode == nil || *c.ExitCode != 143 {
		t.Errorf("stopped container: %s exit=%v", c.LastStatus, deref(c.ExitCode))
	}
	if sc.StopCode != "UserInitiated" || sc.ExecutionStoppedAt == nil {
		t.Errorf("stopCode=%q executionStoppedAt=%v", sc.StopCode, sc.ExecutionStoppedAt)
	}
	// The container is kept (for logs) until the cleanup wait is over.
	if n := len(taskContainers(t, h.rt, a.TaskArn)); n != 1 {
		t.Errorf("%d containers after STOPPED, want 1 kept", n)
	}
}

// freePort finds a TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A host-mode task listens on the host's own port.
func TestHostMode(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	port := freePort(t)
	web := busybox("web", "httpd", "-f", "-p", fmt.Sprint(port), "-h", "/var/www")
	web.PortMappings = []ecs.PortMapping{{ContainerPort: i32(int32(port)), HostPort: i32(int32(port))}}
	a := assignment("hostweb", ecs.NetworkModeHost, web)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	nb := container(sc, "web").NetworkBindings
	if len(nb) != 1 || *nb[0].HostPort != int32(port) || *nb[0].ContainerPort != int32(port) {
		t.Errorf("networkBindings = %+v", nb)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second); body != "ecsd\n" {
		t.Errorf("body = %q", body)
	}
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
	h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
}

// An essential container's exit stops the task with its exit code; the other
// containers are stopped (SIGKILL after stopTimeout for one ignoring SIGTERM).
func TestEssentialContainerExit(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	// Long enough for both containers to start on a loaded machine first.
	main := busybox("main", "sh", "-c", "sleep 5; exit 3")
	side := busybox("side", "sleep", "300")
	side.Essential = boolp(false)
	side.StopTimeout = i32(1)
	a := assignment("essential", ecs.NetworkModeBridge, main, side)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})

	sc := h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
	if sc.StopCode != "EssentialContainerExited" || sc.StoppedReason != "Essential container in task exited" {
		t.Errorf("stopCode=%q stoppedReason=%q", sc.StopCode, sc.StoppedReason)
	}
	if c := container(sc, "main"); c.ExitCode == nil || *c.ExitCode != 3 || c.Reason != "" {
		t.Errorf("main: exit=%v reason=%q", deref(c.ExitCode), c.Reason)
	}
	// sleep as PID 1 ignores SIGTERM: killed after its stopTimeout.
	if c := container(sc, "side"); c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("side: exit=%v", deref(c.ExitCode))
	}
	if !h.rec.statusesContain(a.TaskArn, "RUNNING") {
		t.Errorf("never RUNNING: %v", h.rec.statuses(a.TaskArn))
	}
}

func (r *recorder) statusesContain(arn, s string) bool {
	for _, x := range r.statuses(arn) {
		if x == s {
			return true
		}
	}
	return false
}

// An image that cannot be pulled fails the task to start.
func TestBadImage(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	bad := ecs.ContainerDefinition{Name: "app", Image: "127.0.0.1:1/nope:latest", Memory: i32(32)}
	a := assignment("badimage", ecs.NetworkModeBridge, bad)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "STOPPED", 60*time.Second)
	if sc.StopCode != "TaskFailedToStart" || !strings.HasPrefix(sc.StoppedReason, "CannotPullContainerError: ") {
		t.Errorf("stopCode=%q stoppedReason=%q", sc.StopCode, sc.StoppedReason)
	}
	c := container(sc, "app")
	if !strings.HasPrefix(c.Reason, "CannotPullContainerError: ") || c.LastStatus != "STOPPED" || c.ExitCode != nil {
		t.Errorf("container: %+v", c)
	}
	if sc.PullStartedAt == nil || sc.PullStoppedAt == nil || sc.PullStoppedAt.Before(*sc.PullStartedAt) {
		t.Errorf("pull times %v %v", sc.PullStartedAt, sc.PullStoppedAt)
	}
	if got, want := h.rec.statuses(a.TaskArn), []string{"PENDING", "STOPPED"}; !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if n := len(taskContainers(t, h.rt, a.TaskArn)); n != 0 {
		t.Errorf("%d containers created", n)
	}
}

// Command and environment overrides reach the container, beside ECS's own
// variables.
func TestOverrides(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	out := outDir(t)
	app := busybox("app", "echo", "from-definition")
	app.Environment = []ecs.KeyValuePair{{Name: "A", Value: "def"}, {Name: "KEEP", Value: "kept"}}
	a := assignment("overrides", ecs.NetworkModeBridge, app)
	mountOut(&a, out, "app")
	a.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{
		Name:        "app",
		Command:     []string{"sh", "-c", "env > /out/env.tmp; mv /out/env.tmp /out/env; sleep 300"},
		Environment: []ecs.KeyValuePair{{Name: "A", Value: "over"}, {Name: "B", Value: "b"}},
	}}}
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	env := map[string]string{}
	for _, l := range strings.Split(waitFile(t, out+"/env", 10*time.Second), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	for k, v := range map[string]string{"A": "over", "B": "b", "KEEP": "kept", "AWS_REGION": "us-east-1",
		"AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_ECS_EC2"} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI", "ECS_AGENT_URI"} {
		if !strings.HasPrefix(env[k], "http://") {
			t.Errorf("%s=%q", k, env[k])
		}
	}
	if !strings.Contains(env["ECS_CONTAINER_METADATA_URI_V4"], "/v4/") || !strings.Contains(env["ECS_AGENT_URI"], "/api/") {
		t.Errorf("metadata URIs: %q %q", env["ECS_CONTAINER_METADATA_URI_V4"], env["ECS_AGENT_URI"])
	}
}

// dependsOn HEALTHY: the dependent starts only once its dependency is
// healthy; the task's health follows its essential containers.
func TestDependsOnHealthy(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	db := busybox("db", "sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 300")
	db.HealthCheck = &ecs.HealthCheck{Command: []string{"CMD-SHELL", "test -f /tmp/ready"}, Interval: i32(1), Retries: i32(1), Timeout: i32(2)}
	app := busybox("app", "sleep", "300")
	app.DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionHEALTHY}}
	a := assignment("healthy", ecs.NetworkModeBridge, db, app)
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})

	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	if container(sc, "db").HealthStatus != "HEALTHY" || sc.HealthStatus != "HEALTHY" {
		t.Errorf("at RUNNING: db health %q, task health %q", container(sc, "db").HealthStatus, sc.HealthStatus)
	}
	// Before db was healthy, app had not been started.
	for _, ch := range h.rec.of(a.TaskArn) {
		if container(ch, "db").HealthStatus != "HEALTHY" && container(ch, "app").LastStatus != "PENDING" {
			t.Errorf("app %s while db %s", container(ch, "app").LastStatus, container(ch, "db").HealthStatus)
		}
	}
	ctx := context.Background()
	dbs, _ := h.rt.Inspect(ctx, container(sc, "db").RuntimeID)
	apps, _ := h.rt.Inspect(ctx, container(sc, "app").RuntimeID)
	if d := apps.StartedAt.Sub(dbs.StartedAt); d < 2*time.Second {
		t.Errorf("app started %v after db, want ≥ 2s (db becomes healthy after 2s)", d)
	}
}
