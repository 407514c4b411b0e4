package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/internal/testimage"
)

// outDir is a host directory a container can write its observations into.
func outDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFile waits for a file a container writes.
func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("container never wrote %s", path)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestCreateMapsSpec checks each spec field both as Docker recorded it and as
// the process inside the container sees it.
func TestCreateMapsSpec(t *testing.T) {
	t.Parallel()
	r := rt(t)
	out := outDir(t)
	script := `env > /out/env; hostname > /out/hostname; pwd > /out/pwd; id -u > /out/uid;
ulimit -n > /out/nofile; cat /etc/hosts > /out/hosts; cat /etc/resolv.conf > /out/resolv;
cat /proc/1/comm > /out/pid1; if touch /rootfs-test 2>/dev/null; then echo rw; else echo ro; fi > /out/rootfs;
touch /out/done; exec sleep 300`
	spec := runtime.ContainerSpec{
		Entrypoint:           []string{"/bin/sh", "-c"},
		Command:              []string{script},
		Env:                  []string{"A=1", "B=two words"},
		WorkingDir:           "/var/www",
		User:                 "65534:65534",
		Hostname:             "ecsd-host",
		Labels:               map[string]string{"com.example.k": "v"},
		CPUShares:            256,
		MemoryLimitMiB:       64,
		MemoryReservationMiB: 32,
		Ulimits:              []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		Init:                 true,
		CapAdd:               []string{"NET_ADMIN"},
		CapDrop:              []string{"MKNOD"},
		ReadonlyRootfs:       true,
		ExtraHosts:           []string{"db.local:10.9.8.7"},
		DNSServers:           []string{"127.0.0.53"},
		DNSSearch:            []string{"example.internal"},
		Mounts:               []runtime.Mount{{Type: runtime.MountBind, Source: out, Target: "/out"}},
		HealthCheck: &runtime.HealthCheck{Test: []string{"CMD-SHELL", "true"}, Interval: 30 * time.Second,
			Timeout: 5 * time.Second, StartPeriod: 2 * time.Second, Retries: 3},
		StopTimeout: 7 * time.Second,
		LogDriver:   "json-file",
		LogOptions:  map[string]string{"max-size": "1m"},
	}
	id := run(t, r, spec)
	waitFile(t, filepath.Join(out, "done"), 20*time.Second)

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	env := read("env")
	for _, want := range []string{"A=1", "B=two words"} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	for file, want := range map[string]string{
		"hostname": "ecsd-host", "pwd": "/var/www", "uid": "65534", "nofile": "1024",
		"pid1": "docker-init", "rootfs": "ro",
	} {
		if got := read(file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if h := read("hosts"); !strings.Contains(h, "10.9.8.7\tdb.local") {
		t.Errorf("/etc/hosts lacks extra host:\n%s", h)
	}
	if rc := read("resolv"); !strings.Contains(rc, "nameserver 127.0.0.53") || !strings.Contains(rc, "search example.internal") {
		t.Errorf("resolv.conf:\n%s", rc)
	}

	in := rawInspect(t, id)
	hc := in.HostConfig
	if hc.CPUShares != 256 || hc.Memory != 64<<20 || hc.MemoryReservation != 32<<20 {
		t.Errorf("resources: shares=%d memory=%d reservation=%d", hc.CPUShares, hc.Memory, hc.MemoryReservation)
	}
	if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Soft != 1024 || hc.Ulimits[0].Hard != 2048 {
		t.Errorf("ulimits: %+v", hc.Ulimits)
	}
	if hc.Init == nil || !*hc.Init || !hc.ReadonlyRootfs || hc.Privileged {
		t.Errorf("init=%v readonly=%v privileged=%v", hc.Init, hc.ReadonlyRootfs, hc.Privileged)
	}
	// Docker 20.10 records capabilities with the CAP_ prefix.
	if capName(hc.CapAdd) != "NET_ADMIN" || capName(hc.CapDrop) != "MKNOD" {
		t.Errorf("caps: add=%v drop=%v", hc.CapAdd, hc.CapDrop)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "1m" {
		t.Errorf("log config: %+v", hc.LogConfig)
	}
	hcfg := in.Config.Healthcheck
	if hcfg == nil || hcfg.Interval != 30*time.Second || hcfg.Timeout != 5*time.Second ||
		hcfg.StartPeriod != 2*time.Second || hcfg.Retries != 3 || strings.Join(hcfg.Test, " ") != "CMD-SHELL true" {
		t.Errorf("healthcheck: %+v", hcfg)
	}
	if in.Config.StopTimeout == nil || *in.Config.StopTimeout != 7 {
		t.Errorf("stop timeout: %v", in.Config.StopTimeout)
	}

	st, err := r.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Status != runtime.StatusRunning || st.StartedAt.IsZero() || !st.FinishedAt.IsZero() ||
		st.Pid == 0 || st.Image != testimage.Busybox || !strings.HasPrefix(st.ImageID, "sha256:") ||
		st.Labels["com.example.k"] != "v" || st.NetworkMode != "default" && st.NetworkMode != "bridge" {
		t.Errorf("state: %+v", st)
	}
	if n, ok := st.Networks["bridge"]; !ok || n.IPv4 == "" || n.MAC == "" || n.Gateway == "" || n.PrefixLen == 0 {
		t.Errorf("bridge network: %+v", st.Networks)
	}
}

// TestStopSignals: Stop sends SIGTERM first, SIGKILL after the timeout.
func TestStopSignals(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx := context.Background()

	t.Run("TermHandled", func(t *testing.T) {
		t.Parallel()
		out := outDir(t)
		id := run(t, r, runtime.ContainerSpec{
			Command: []string{"sh", "-c", `trap 'exit 3' TERM; touch /out/ready; sleep 300 & wait $!`},
			Mounts:  []runtime.Mount{{Source: out, Target: "/out"}},
		})
		waitFile(t, filepath.Join(out, "ready"), 20*time.Second)
		start := time.Now()
		if err := r.Stop(ctx, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stop took %v though the process exits on SIGTERM", d)
		}
		st := waitExited(t, r, id)
		if st.ExitCode != 3 || st.OOMKilled || st.FinishedAt.IsZero() {
			t.Errorf("state after stop: exit=%d oom=%v finished=%v", st.ExitCode, st.OOMKilled, st.FinishedAt)
		}
	})

	t.Run("TermIgnored", func(t *testing.T) {
		t.Parallel()
		out := outDir(t)
		id := run(t, r, runtime.ContainerSpec{
			Command: []string{"sh", "-c", `trap '' TERM; touch /out/ready; while :; do sleep 1; done`},
			Mounts:  []runtime.Mount{{Source: out, Target: "/out"}},
		})
		waitFile(t, filepath.Join(out, "ready"), 20*time.Second)
		start := time.Now()
		if err := r.Stop(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("stop took only %v: SIGKILL came before the timeout", d)
		}
		if st := waitExited(t, r, id); st.ExitCode != 137 {
			t.Errorf("exit code %d, want 137 (SIGKILL)", st.ExitCode)
		}
	})

	t.Run("KillAndStopStopped", func(t *testing.T) {
		t.Parallel()
		id := run(t, r, runtime.ContainerSpec{Command: []string{"sleep", "300"}})
		if err := r.Kill(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		if st := waitExited(t, r, id); st.ExitCode != 137 {
			t.Errorf("exit code %d after SIGKILL", st.ExitCode)
		}
		if err := r.Stop(ctx, id, time.Second); err != nil {
			t.Errorf("stopping a stopped container: %v", err)
		}
	})
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	r := rt(t)
	for _, code := range []int{0, 1, 42} {
		if got := runToExit(t, r, runtime.ContainerSpec{}, "exit "+strconv.Itoa(code)); got != code {
			t.Errorf("exit %d reported as %d", code, got)
		}
	}

	// A command that does not exist: Start fails and Inspect explains why.
	id := create(t, r, runtime.ContainerSpec{Command: []string{"/no/such/binary"}})
	err := r.Start(context.Background(), id)
	if err == nil {
		t.Fatal("start of a missing binary succeeded")
	}
	st, ierr := r.Inspect(context.Background(), id)
	if ierr != nil {
		t.Fatal(ierr)
	}
	if st.Running || st.ExitCode != 127 || st.Error == "" {
		t.Errorf("after failed start: status=%s exit=%d error=%q (start error %v)", st.Status, st.ExitCode, st.Error, err)
	}
}

// TestOOMKilled: the shell holds 64 MiB in a variable under a 16 MiB limit, so
// the main process is the one the kernel kills.
func TestOOMKilled(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, _ := r.Events(ctx, testLabels(t), time.Time{})
	id := run(t, r, runtime.ContainerSpec{
		Command:        []string{"sh", "-c", `x=$(head -c 64m /dev/zero | tr "\0" a); echo ${#x}`},
		MemoryLimitMiB: 16,
	})
	st := waitExited(t, r, id)
	if !st.OOMKilled || st.ExitCode != 137 {
		t.Errorf("oomKilled=%v exit=%d, want true/137", st.OOMKilled, st.ExitCode)
	}
	// The engine sees the oom event before die.
	var seen []string
	for ev := range events {
		if ev.ContainerID != id {
			continue
		}
		seen = append(seen, ev.Action)
		if ev.Action == runtime.EventDie {
			break
		}
	}
	if !hasSubsequence(seen, []string{runtime.EventStart, runtime.EventOOM, runtime.EventDie}) {
		t.Errorf("events %v", seen)
	}
}

func TestInspectErrors(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx := context.Background()
	missing := "ecsd-test-missing-" + runID
	if _, err := r.Inspect(ctx, missing); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("inspect of a missing container: %v", err)
	}
	if err := r.Remove(ctx, missing, true); err != nil {
		t.Errorf("remove of a missing container: %v", err)
	}
	if err := r.Start(ctx, missing); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("start of a missing container: %v", err)
	}
	name := "ecsd-test-dup-" + runID
	create(t, r, runtime.ContainerSpec{Name: name, Command: []string{"true"}})
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: name, Image: testimage.Busybox, Labels: testLabels(t)}); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := r.Create(ctx, runtime.ContainerSpec{Image: testimage.Busybox, Mounts: []runtime.Mount{{Source: "rel", Target: "/x"}}}); err == nil {
		t.Error("relative bind source accepted")
	}
	if ok, err := r.ImageExists(ctx, testimage.Busybox); !ok || err != nil {
		t.Errorf("ImageExists(busybox) = %v, %v", ok, err)
	}
	if ok, err := r.ImageExists(ctx, "ecsd/no-such-image:"+runID); ok || err != nil {
		t.Errorf("ImageExists(missing) = %v, %v", ok, err)
	}
}

func TestPullUnreachableRegistry(t *testing.T) {
	t.Parallel()
	r := rt(t)
	start := time.Now()
	err := r.Pull(context.Background(), "127.0.0.1:1/nope:latest", &runtime.RegistryAuth{Username: "u", Password: "p", ServerAddress: "127.0.0.1:1"})
	var pe *runtime.PullError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *runtime.PullError", err, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("pull took %v to fail", d)
	}
	if pe.Ref != "127.0.0.1:1/nope:latest" || !strings.Contains(pe.Message, "127.0.0.1:1") {
		t.Errorf("pull error: ref=%q message=%q", pe.Ref, pe.Message)
	}
	t.Logf("CannotPullContainerError: %s", pe.Message)
}

func capName(caps []string) string {
	return strings.TrimPrefix(strings.Join(caps, ","), "CAP_")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestInfo(t *testing.T) {
	t.Parallel()
	r := rt(t)
	in, err := r.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if in.Cores < 1 || in.MemoryMiB < 256 || in.ServerVersion == "" || in.APIVersion == "" || in.MinAPIVersion == "" ||
		in.OSType != "linux" || in.Architecture == "" || in.Hostname == "" {
		t.Errorf("info: %+v", in)
	}
	if !contains(in.LogDrivers, "json-file") || !contains(in.Runtimes, "runc") {
		t.Errorf("log drivers %v, runtimes %v", in.LogDrivers, in.Runtimes)
	}
	t.Logf("%+v", in)
}

func TestStats(t *testing.T) {
	t.Parallel()
	r := rt(t)
	id := run(t, r, runtime.ContainerSpec{Command: []string{"sleep", "300"}, MemoryLimitMiB: 32})
	raw, err := r.Stats(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		ID          string `json:"id"`
		MemoryStats struct {
			Limit uint64 `json:"limit"`
		} `json:"memory_stats"`
		CPUStats map[string]any `json:"cpu_stats"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != id || s.MemoryStats.Limit != 32<<20 || len(s.CPUStats) == 0 {
		t.Errorf("stats: %s", raw)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx := context.Background()
	running := run(t, r, runtime.ContainerSpec{Command: []string{"sleep", "300"}, Labels: map[string]string{"role": "a"}})
	created := create(t, r, runtime.ContainerSpec{Command: []string{"true"}, Labels: map[string]string{"role": "b"}})
	mine := testLabels(t)

	ids := func(l []runtime.ContainerState) map[string]runtime.ContainerState {
		m := map[string]runtime.ContainerState{}
		for _, c := range l {
			m[c.ID] = c
		}
		return m
	}
	list, err := r.List(ctx, mine, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(list); len(got) != 1 || !got[running].Running || got[running].Status != runtime.StatusRunning {
		t.Errorf("running only: %+v", list)
	}
	list, _ = r.List(ctx, mine, true)
	got := ids(list)
	if len(got) != 2 || got[created].Status != runtime.StatusCreated || got[created].Running {
		t.Errorf("all: %+v", list)
	}
	if c := got[running]; c.Name == "" || c.Image != testimage.Busybox || c.Labels["role"] != "a" || c.Networks["bridge"].IPv4 == "" {
		t.Errorf("summary of running container: %+v", c)
	}
	sel := testLabels(t)
	sel["role"] = "b"
	if list, _ := r.List(ctx, sel, true); len(list) != 1 || list[0].ID != created {
		t.Errorf("by role=b: %+v", list)
	}
	sel["role"] = ""
	if list, _ := r.List(ctx, sel, true); len(list) != 2 {
		t.Errorf("by role present: %+v", list)
	}
}

// TestMounts covers bind mounts (read-write, read-only, created when
// missing), an anonymous volume, tmpfs and volumes-from.
func TestMounts(t *testing.T) {
	t.Parallel()
	r := rt(t)
	dir := outDir(t)
	fresh := filepath.Join(t.TempDir(), "made", "by", "docker")

	a := run(t, r, runtime.ContainerSpec{
		Command: []string{"sh", "-c", "echo a > /data/a && echo s > /scratch/s && touch /fresh/ok"},
		Mounts: []runtime.Mount{
			{Type: runtime.MountBind, Source: dir, Target: "/data"},
			{Type: runtime.MountVolume, Target: "/scratch"},
			{Type: runtime.MountBind, Source: fresh, Target: "/fresh"},
		},
	})
	if st := waitExited(t, r, a); st.ExitCode != 0 {
		t.Fatalf("writer exited %d", st.ExitCode)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ok")); err != nil {
		t.Errorf("missing bind source was not created: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "a\n" {
		t.Errorf("host sees %q", b)
	}

	script := `grep -qx s /scratch/s || exit 2; grep -qx a /data/a || exit 3;
touch /data/x 2>/dev/null && exit 4; touch /scratch/x 2>/dev/null && exit 5; exit 0`
	if code := runToExit(t, r, runtime.ContainerSpec{VolumesFrom: []string{a + ":ro"}}, script); code != 0 {
		t.Errorf("volumes-from :ro reader exited %d", code)
	}
	if code := runToExit(t, r, runtime.ContainerSpec{VolumesFrom: []string{a}}, "grep -qx s /scratch/s && touch /scratch/y"); code != 0 {
		t.Errorf("volumes-from rw exited %d", code)
	}
	script = `grep -qx a /ro/a || exit 2; touch /ro/x 2>/dev/null && exit 3; grep -q ' /fast tmpfs' /proc/mounts || exit 4; touch /fast/x`
	spec := runtime.ContainerSpec{Mounts: []runtime.Mount{
		{Type: runtime.MountBind, Source: dir, Target: "/ro", ReadOnly: true},
		{Type: runtime.MountTmpfs, Target: "/fast"},
	}}
	if code := runToExit(t, r, spec, script); code != 0 {
		t.Errorf("read-only bind/tmpfs check exited %d", code)
	}
}
