// Package command is the provisioner for real machines: it runs scripts the
// operator configured on the server's command line (never anything from the
// API). The launch script gets the node's description in ECSD_* environment
// variables, starts a machine that runs
//
//	ecsd agent --server "$ECSD_SERVER" --cluster "$ECSD_CLUSTER" --join-token "$ECSD_JOIN_TOKEN" \
//	  --node-group "$ECSD_NODE_GROUP" --node-id "$ECSD_NODE_ID" ...
//
// and prints the machine's id on stdout (its last non-empty line). The
// terminate script gets ECSD_NODE_ID and ECSD_PROVIDER_ID and removes the
// machine; it must succeed when the machine is already gone.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecsd/ecsd/provisioner"
)

// Defaults bounding one script run.
const (
	DefaultLaunchTimeout    = 5 * time.Minute
	DefaultTerminateTimeout = 5 * time.Minute
	// maxStderr bounds the stderr kept for an error message.
	maxStderr = 4 << 10
)

// Config configures the command provisioner.
type Config struct {
	// LaunchCommand and TerminateCommand are run with `sh -c`.
	LaunchCommand    string
	TerminateCommand string
	LaunchTimeout    time.Duration
	TerminateTimeout time.Duration
	// Env is the scripts' base environment (default: this process's).
	Env []string
}

// Provisioner runs the operator's scripts.
type Provisioner struct{ cfg Config }

var _ provisioner.Provisioner = (*Provisioner)(nil)

// New returns a command provisioner; both commands are required.
func New(cfg Config) (*Provisioner, error) {
	if strings.TrimSpace(cfg.LaunchCommand) == "" || strings.TrimSpace(cfg.TerminateCommand) == "" {
		return nil, errors.New("command provisioner: both a launch and a terminate command are required")
	}
	if cfg.LaunchTimeout <= 0 {
		cfg.LaunchTimeout = DefaultLaunchTimeout
	}
	if cfg.TerminateTimeout <= 0 {
		cfg.TerminateTimeout = DefaultTerminateTimeout
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	return &Provisioner{cfg: cfg}, nil
}

// Launch runs the launch script and returns the id it printed.
func (p *Provisioner) Launch(ctx context.Context, req provisioner.LaunchRequest) (string, error) {
	env := []string{
		"ECSD_NODE_GROUP=" + req.Group,
		"ECSD_NODE_ID=" + req.NodeID,
		"ECSD_CLUSTER=" + req.Cluster,
		"ECSD_ACCOUNT_ID=" + req.Account,
		"ECSD_REGION=" + req.Region,
		"ECSD_SERVER=" + req.ServerURL,
		"ECSD_JOIN_TOKEN=" + req.JoinToken,
		"ECSD_INSTANCE_TYPE=" + req.InstanceType,
		"ECSD_CPU=" + strconv.Itoa(req.CPU),
		"ECSD_MEMORY=" + strconv.FormatInt(req.Memory, 10),
		"ECSD_AVAILABILITY_ZONE=" + req.AvailabilityZone,
		"ECSD_ATTRIBUTES=" + provisioner.FormatAttributes(req.Attributes),
	}
	out, err := p.run(ctx, p.cfg.LaunchCommand, p.cfg.LaunchTimeout, env)
	if err != nil {
		return "", fmt.Errorf("launch command for node %s: %w", req.NodeID, err)
	}
	id := lastLine(out)
	if id == "" {
		return "", fmt.Errorf("launch command for node %s printed no machine id on stdout", req.NodeID)
	}
	return id, nil
}

// Terminate runs the terminate script.
func (p *Provisioner) Terminate(ctx context.Context, req provisioner.TerminateRequest) error {
	env := []string{
		"ECSD_NODE_GROUP=" + req.Group,
		"ECSD_NODE_ID=" + req.NodeID,
		"ECSD_PROVIDER_ID=" + req.ProviderID,
	}
	if _, err := p.run(ctx, p.cfg.TerminateCommand, p.cfg.TerminateTimeout, env); err != nil {
		return fmt.Errorf("terminate command for node %s: %w", req.NodeID, err)
	}
	return nil
}

// run runs script under sh with extra environment, bounded by timeout; a
// failure carries the script's stderr.
func (p *Provisioner) run(ctx context.Context, script string, timeout time.Duration, extra []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = append(withoutSecrets(p.cfg.Env), extra...)
	// The script runs in its own process group, all of which a timeout
	// kills; WaitDelay covers a child that escaped it holding our pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &limitedWriter{buf: &stderr, n: maxStderr}
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		if msg != "" {
			return "", fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return stdout.String(), nil
}

// withoutSecrets drops the server's own ECSD_* settings (its access keys
// among them) from the scripts' environment.
func withoutSecrets(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ECSD_") {
			out = append(out, kv)
		}
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

type limitedWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.buf.Len(); room > 0 {
		if len(p) > room {
			w.buf.Write(p[:room])
		} else {
			w.buf.Write(p)
		}
	}
	return len(p), nil
}
