package testimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/internal/testimage"
)

func TestRootFS(t *testing.T) {
	b, err := testimage.RootFS([]byte("BIN"), []string{"bin/sh", "usr/bin/wget", "opt/x/y", "bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("duplicate entry %s", h.Name)
		}
		got[h.Name] = h
	}
	for name, typ := range map[string]byte{
		"bin/busybox": tar.TypeReg, "bin/sh": tar.TypeSymlink, "usr/bin/wget": tar.TypeSymlink,
		"opt/": tar.TypeDir, "opt/x/": tar.TypeDir, "opt/x/y": tar.TypeSymlink,
		"tmp/": tar.TypeDir, "etc/passwd": tar.TypeReg, "etc/group": tar.TypeReg,
	} {
		h, ok := got[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if h.Typeflag != typ {
			t.Errorf("%s: type %c, want %c", name, h.Typeflag, typ)
		}
	}
	if h := got["tmp/"]; h != nil && h.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp mode %o", h.Mode)
	}
	if h := got["bin/sh"]; h != nil && h.Linkname != "/bin/busybox" {
		t.Errorf("bin/sh -> %s", h.Linkname)
	}
	b2, _ := testimage.RootFS([]byte("BIN"), []string{"bin/sh", "usr/bin/wget", "opt/x/y", "bin/sh"})
	if !bytes.Equal(b, b2) {
		t.Error("rootfs is not reproducible")
	}
}

func TestMissingBusybox(t *testing.T) {
	old := testimage.BusyboxPath
	testimage.BusyboxPath = "/nonexistent/busybox"
	defer func() { testimage.BusyboxPath = old }()
	_, err := testimage.Ensure(context.Background(), &countingImporter{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("apt-get install busybox-static")) {
		t.Fatalf("err = %v", err)
	}
}

// countingImporter wraps a real importer and counts imports.
type countingImporter struct {
	testimage.Importer
	imports int
}

func (c *countingImporter) ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error) {
	if c.Importer == nil {
		return nil, false, nil
	}
	return c.Importer.ImageLabels(ctx, ref)
}

func (c *countingImporter) ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes []string) error {
	c.imports++
	if c.Importer == nil {
		return errors.New("no importer")
	}
	return c.Importer.ImportImage(ctx, ref, rootfs, changes)
}

func dockerRuntime(t *testing.T) *docker.Runtime {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		if os.Getenv("ECSD_E2E_REQUIRED") == "1" {
			t.Fatal("docker socket absent and ECSD_E2E_REQUIRED=1")
		}
		t.Skip("no docker socket")
	}
	rt, err := docker.New(docker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	if err := rt.Ping(context.Background()); err != nil {
		if os.Getenv("ECSD_E2E_REQUIRED") == "1" {
			t.Fatal(err)
		}
		t.Skip("docker not answering:", err)
	}
	return rt
}

// TestEnsure builds both images against the real daemon, checks that a second
// call imports nothing, and that each image does what it promises.
func TestEnsure(t *testing.T) {
	rt := dockerRuntime(t)
	ctx := context.Background()
	for _, ensure := range []func(context.Context, testimage.Importer) (string, error){testimage.Ensure, testimage.EnsurePause} {
		if _, err := ensure(ctx, rt); err != nil {
			t.Fatal(err)
		}
		c := &countingImporter{Importer: rt}
		if _, err := ensure(ctx, c); err != nil {
			t.Fatal(err)
		}
		if c.imports != 0 {
			t.Errorf("second Ensure imported %d times", c.imports)
		}
	}

	// busybox: the applets tests rely on are there.
	id, err := rt.Create(ctx, runtime.ContainerSpec{
		Image:   testimage.Busybox,
		Command: []string{"sh", "-c", "for a in sh sleep echo cat env wget nc httpd true false kill ls id hostname ip head tr grep touch; do command -v $a >/dev/null || exit 3; done; id -un | grep -qx root"},
		Labels:  map[string]string{"ecsd.test": "testimage"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(ctx, id, true)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st := waitExited(t, rt, id)
	if st.ExitCode != 0 {
		t.Errorf("applet check exited %d", st.ExitCode)
	}

	// pause: runs until SIGTERM, then exits 0 at once.
	pid, err := rt.Create(ctx, runtime.ContainerSpec{Image: testimage.Pause, Labels: map[string]string{"ecsd.test": "testimage"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove(ctx, pid, true)
	if err := rt.Start(ctx, pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	start := time.Now()
	if err := rt.Stop(ctx, pid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("pause took %v to stop", d)
	}
	st, err = rt.Inspect(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.ExitCode != 0 {
		t.Errorf("pause after stop: running=%v exit=%d", st.Running, st.ExitCode)
	}
}

func waitExited(t *testing.T, rt runtime.Runtime, id string) runtime.ContainerState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := rt.Inspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == runtime.StatusExited || st.Status == runtime.StatusDead {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s", id, st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
