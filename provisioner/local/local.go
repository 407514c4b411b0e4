// Package local is the provisioner for development, demos and tests: each
// node is an `ecsd agent` child process on this host, offering the virtual
// capacity of its instance type (the Docker daemon is shared). Its provider
// id is the process id.
//
// The processes are this server's children: Close stops them all, and after
// a server restart the nodes' old processes are not adopted (Terminate of an
// unknown node succeeds; the controller replaces nodes whose agents never
// come back only through their launch timeout).
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ecsd/ecsd/provisioner"
)

// DefaultStopTimeout is how long Terminate waits after SIGTERM before SIGKILL.
const DefaultStopTimeout = 30 * time.Second

// Config configures the local provisioner.
type Config struct {
	// Binary is the ecsd executable (default: this process's executable).
	Binary string
	// Dir holds each node's data dir: <Dir>/<group>/<node id> (required).
	Dir string
	// StopTimeout bounds the wait between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// ExtraArgs are appended to every `ecsd agent` command line.
	ExtraArgs []string
	// Env is the agents' environment (default: this process's, without ECSD_*
	// variables, so the server's own settings do not leak into its agents).
	Env    []string
	Logger *slog.Logger
}

// Provisioner runs agents as child processes.
type Provisioner struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	procs  map[string]*proc // by provider id (pid)
	closed bool
}

type proc struct {
	cmd    *exec.Cmd
	nodeID string
	done   chan struct{}
	log    *os.File
}

var _ provisioner.Provisioner = (*Provisioner)(nil)

// New returns a local provisioner.
func New(cfg Config) (*Provisioner, error) {
	if cfg.Dir == "" {
		return nil, errors.New("local provisioner: a directory for the agents' data is required")
	}
	if abs, err := filepath.Abs(cfg.Dir); err == nil {
		cfg.Dir = abs
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local provisioner: own executable: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Env == nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ECSD_") {
				cfg.Env = append(cfg.Env, kv)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Provisioner{cfg: cfg, log: cfg.Logger.With("component", "provisioner-local"), procs: map[string]*proc{}}, nil
}

// safeName keeps a path element from escaping its directory.
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

// Launch starts `ecsd agent` for the node and returns its pid.
func (p *Provisioner) Launch(ctx context.Context, req provisioner.LaunchRequest) (string, error) {
	if !safeName(req.Group) || !safeName(req.NodeID) {
		return "", fmt.Errorf("local provisioner: bad group %q or node id %q", req.Group, req.NodeID)
	}
	dataDir := filepath.Join(p.cfg.Dir, req.Group, req.NodeID)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("local provisioner: data dir: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", fmt.Errorf("local provisioner: tmds port: %w", err)
	}
	args := []string{"agent",
		"--server", req.ServerURL,
		"--cluster", req.Cluster,
		"--join-token", req.JoinToken,
		"--data-dir", dataDir,
		"--cpu", strconv.Itoa(req.CPU),
		"--memory", strconv.FormatInt(req.Memory, 10),
		"--instance-type", req.InstanceType,
		"--availability-zone", req.AvailabilityZone,
		"--attributes", provisioner.FormatAttributes(req.Attributes),
		"--node-group", req.Group,
		"--node-id", req.NodeID,
		"--tmds-port", strconv.Itoa(port),
	}
	args = append(args, p.cfg.ExtraArgs...)
	logFile, err := os.OpenFile(filepath.Join(dataDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("local provisioner: log file: %w", err)
	}
	cmd := exec.Command(p.cfg.Binary, args...)
	cmd.Env = p.cfg.Env
	cmd.Dir = dataDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C meant for the server does not reach the
	// agents; the server stops them itself (Close) in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		logFile.Close()
		return "", errors.New("local provisioner: closed")
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", fmt.Errorf("local provisioner: start agent: %w", err)
	}
	pr := &proc{cmd: cmd, nodeID: req.NodeID, done: make(chan struct{}), log: logFile}
	id := strconv.Itoa(cmd.Process.Pid)
	p.procs[id] = pr
	go func() {
		err := cmd.Wait()
		logFile.Close()
		close(pr.done)
		p.log.Info("agent exited", "group", req.Group, "node", req.NodeID, "pid", id, "err", err)
	}()
	p.log.Info("agent started", "group", req.Group, "node", req.NodeID, "pid", id, "log", logFile.Name())
	return id, nil
}

// Terminate stops the node's agent: SIGTERM, then SIGKILL after the stop
// timeout (or when ctx ends). A node this process did not start (or that
// already exited) needs nothing.
func (p *Provisioner) Terminate(ctx context.Context, req provisioner.TerminateRequest) error {
	p.mu.Lock()
	pr := p.procs[req.ProviderID]
	if pr == nil {
		// Launched before a restart, or the launch never answered: find it by node id.
		for _, cand := range p.procs {
			if cand.nodeID == req.NodeID {
				pr = cand
			}
		}
	}
	p.mu.Unlock()
	if pr == nil {
		return nil
	}
	p.stop(ctx, pr)
	p.mu.Lock()
	delete(p.procs, strconv.Itoa(pr.cmd.Process.Pid))
	p.mu.Unlock()
	return nil
}

func (p *Provisioner) stop(ctx context.Context, pr *proc) {
	select {
	case <-pr.done:
		return
	default:
	}
	_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(p.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-pr.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	p.log.Warn("agent did not stop after SIGTERM; killing it", "node", pr.nodeID, "pid", pr.cmd.Process.Pid)
	_ = pr.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-pr.done:
	case <-time.After(5 * time.Second):
	}
}

// Close stops every agent this provisioner started (in parallel) and refuses
// further launches.
func (p *Provisioner) Close() error {
	p.mu.Lock()
	p.closed = true
	procs := make([]*proc, 0, len(p.procs))
	for _, pr := range p.procs {
		procs = append(procs, pr)
	}
	p.procs = map[string]*proc{}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, pr := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(ctx, pr) }()
	}
	wg.Wait()
	return nil
}

// Running is the number of agent processes alive (tests).
func (p *Provisioner) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pr := range p.procs {
		select {
		case <-pr.done:
		default:
			n++
		}
	}
	return n
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
