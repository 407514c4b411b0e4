package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildVersion is stamped into the binary under test; /version must report it.
const buildVersion = "e2e-test"

// ecsdBin is the binary built once by TestMain.
var ecsdBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ecsd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ecsdBin = filepath.Join(dir, "ecsd")
	build := exec.Command(goTool(), "build", "-ldflags", "-X main.version="+buildVersion, "-o", ecsdBin, "./cmd/ecsd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/ecsd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// repoRoot is the module root (tests run in test/e2e).
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found at %s: %w", root, err)
	}
	return root, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// required reports whether missing tools fail the tests instead of skipping them.
func required() bool { return os.Getenv("ECSD_E2E_REQUIRED") == "1" }

// needTool returns the path of an external tool, or skips (fails under
// ECSD_E2E_REQUIRED=1) when it is not installed.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if required() {
		t.Fatalf("%s is not on PATH and ECSD_E2E_REQUIRED=1: %v", name, err)
	}
	t.Skipf("%s is not on PATH (set ECSD_E2E_REQUIRED=1 to make this a failure): %v", name, err)
	return ""
}

// baseEnv is this process's environment without ECSD_* and AWS_* variables, so a
// developer's own settings never leak into the processes under test.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ECSD_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// ecsdOpts says how to start one ecsd process.
type ecsdOpts struct {
	// Mode is the subcommand: "server" or "dev".
	Mode string
	// DataDir is reused across restarts; default a fresh temp dir.
	DataDir string
	// Env adds KEY=VALUE pairs (e.g. ECSD_ACCESS_KEY_ID) to a clean environment.
	Env []string
	// Args are extra flags.
	Args []string
}

// ecsdProc is a running ecsd subprocess.
type ecsdProc struct {
	URL     string
	DataDir string
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	waitErr error
}

var errPortTaken = errors.New("listen address already in use")

// startECSD starts ecsd on a free loopback port, waits until /healthz answers 200,
// and stops it (by PID) at cleanup. On failure the process's output is logged.
func startECSD(t *testing.T, o ecsdOpts) *ecsdProc {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	for attempt := 1; ; attempt++ {
		p, err := tryStartECSD(t, o)
		if err == nil {
			return p
		}
		// The free port can be taken between choosing it and ecsd binding it.
		if errors.Is(err, errPortTaken) && attempt < 3 {
			continue
		}
		t.Fatalf("start ecsd %s: %v", o.Mode, err)
	}
}

func tryStartECSD(t *testing.T, o ecsdOpts) (*ecsdProc, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{o.Mode, "--listen", addr, "--data-dir", o.DataDir}, o.Args...)
	cmd := exec.Command(ecsdBin, args...)
	cmd.Env = append(baseEnv(), o.Env...)
	p := &ecsdProc{URL: "http://" + addr, DataDir: o.DataDir, cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("ecsd %s (pid %d) output:\n%s", o.Mode, cmd.Process.Pid, p.out.Tail(16<<10))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			out := p.out.String()
			if strings.Contains(out, "address already in use") {
				return nil, fmt.Errorf("%w: %s", errPortTaken, addr)
			}
			return nil, fmt.Errorf("ecsd exited before it was healthy (%v); output:\n%s", p.waitErr, out)
		default:
		}
		if status, _, err := httpDo(http.MethodGet, p.URL+"/healthz"); err == nil && status == http.StatusOK {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("/healthz not 200 within 60s; output:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after 10 s. Safe to call twice.
func (p *ecsdProc) Stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("ecsd (pid %d) did not stop within 10s of SIGTERM; killing it", p.cmd.Process.Pid)
		p.Kill(t)
	}
}

// Kill ends the process with SIGKILL (no shutdown at all) and waits for it.
func (p *ecsdProc) Kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("ecsd (pid %d) still running 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// Output is everything the process has written so far.
func (p *ecsdProc) Output() string { return p.out.String() }

// freeAddr picks a free loopback port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpDo(method, url string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// run runs a command with a deadline, logs its combined output and returns it.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s (%.1fs)\n%s", name, strings.Join(args, " "), time.Since(start).Seconds(), out)
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	return string(out), err
}

// syncBuffer collects a subprocess's output for the test to read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last n bytes of output.
func (b *syncBuffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}
