// Package testimage builds ecsd's local test and demo images from the host's
// static busybox binary, so tests and `ecsd dev` never need a registry:
//
//	ecsd/busybox:latest  busybox with every applet linked, CMD ["sh"]
//	ecsd/pause:latest    the same root filesystem; PID 1 sleeps until SIGTERM/SIGINT
//
// Building is idempotent: an image whose label matches this builder and this
// busybox binary is kept, anything else is re-imported under the same tag.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Image references.
const (
	Busybox = "ecsd/busybox:latest"
	Pause   = "ecsd/pause:latest"
)

// BusyboxPath is the static busybox binary the images are made from.
var BusyboxPath = "/bin/busybox"

// PauseCommand is the pause image's entrypoint: it exits 0 on SIGTERM/SIGINT
// (a shell as PID 1 ignores signals it has no trap for), and otherwise waits.
var PauseCommand = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// LabelBuild carries a hash of the builder version and the busybox binary, so a
// stale image (new busybox, new layout) is rebuilt.
const LabelBuild = "ecsd.testimage.build"

// labelManaged mirrors runtime.LabelManaged without importing the agent.
const labelManaged = "ecsd.managed"

// builderVersion changes whenever the rootfs layout or image config changes.
const builderVersion = "1"

// Importer is the part of the container runtime this package needs;
// agent/runtime/docker's Runtime implements it.
type Importer interface {
	// ImageLabels returns a local image's labels and whether it exists.
	ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error)
	// ImportImage creates ref from a root filesystem tar with Dockerfile-style changes.
	ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes []string) error
}

var mu sync.Mutex // one build at a time per process

// Ensure makes sure ecsd/busybox:latest exists and returns its reference.
func Ensure(ctx context.Context, imp Importer) (string, error) {
	return ensure(ctx, imp, Busybox, []string{`CMD ["sh"]`})
}

// EnsurePause makes sure ecsd/pause:latest exists and returns its reference.
func EnsurePause(ctx context.Context, imp Importer) (string, error) {
	ep, err := jsonArray(PauseCommand)
	if err != nil {
		return "", err
	}
	return ensure(ctx, imp, Pause, []string{"ENTRYPOINT " + ep})
}

func ensure(ctx context.Context, imp Importer, ref string, extra []string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	bin, err := os.ReadFile(BusyboxPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("testimage: %s is missing: install it with `apt-get install busybox-static`", BusyboxPath)
	}
	if err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	build := buildID(bin, ref, extra)
	labels, ok, err := imp.ImageLabels(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	if ok && labels[LabelBuild] == build {
		return ref, nil
	}
	applets, err := appletPaths(ctx)
	if err != nil {
		return "", err
	}
	rootfs, err := RootFS(bin, applets)
	if err != nil {
		return "", err
	}
	changes := append([]string{
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		fmt.Sprintf("LABEL %s=true %s=%s", labelManaged, LabelBuild, build),
	}, extra...)
	if err := imp.ImportImage(ctx, ref, bytes.NewReader(rootfs), changes); err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	return ref, nil
}

func buildID(bin []byte, ref string, extra []string) string {
	h := sha256.New()
	h.Write(bin)
	fmt.Fprintf(h, "\x00%s\x00%s\x00%s", builderVersion, ref, strings.Join(extra, "\x00"))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// appletPaths asks busybox where each applet belongs (bin/sh, usr/bin/wget, ...).
func appletPaths(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, BusyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("testimage: %s --list-full: %w", BusyboxPath, err)
	}
	var paths []string
	for _, l := range strings.Fields(string(out)) {
		l = strings.TrimPrefix(l, "/")
		if !strings.Contains(l, "/") || l == "bin/busybox" {
			continue // e.g. linuxrc at the root: nothing needs it
		}
		paths = append(paths, l)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("testimage: %s --list-full listed no applets", BusyboxPath)
	}
	return paths, nil
}

// RootFS returns a root filesystem tar: /bin/busybox, a symlink to it for each
// applet path, the usual directories, and minimal /etc/passwd and /etc/group.
// Entries have a fixed time so the same input always gives the same layer.
func RootFS(busybox []byte, applets []string) ([]byte, error) {
	mtime := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]int64{
		"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
		"etc": 0o755, "root": 0o700, "home": 0o755, "var": 0o755, "var/www": 0o755,
		"tmp": 0o1777, "var/tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755, "run": 0o755,
	}
	for _, a := range applets {
		for d := path.Dir(a); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names) // parents before children
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d], ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, busybox},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
		{"var/www/index.html", 0o644, []byte("ecsd\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, a := range applets {
		if seen[a] {
			continue
		}
		seen[a] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: a, Linkname: "/bin/busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonArray renders a Dockerfile exec-form array.
func jsonArray(args []string) (string, error) {
	b, err := json.Marshal(args)
	return string(b), err
}
