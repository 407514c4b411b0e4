// Package docker implements runtime.Runtime on the Docker Engine API. It is the
// only package of ecsd that imports the Docker client; nothing outside it sees
// a Docker type.
package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/ecsd/ecsd/agent/runtime"
)

// Timeouts bound each kind of call to the daemon. A hung dockerd must never
// hang a task's goroutine forever, so every call gets one.
type Timeouts struct {
	Ping    time.Duration
	Info    time.Duration
	Inspect time.Duration // container/image/network inspect
	List    time.Duration
	Create  time.Duration
	Start   time.Duration
	// StopGrace is added to a Stop's own timeout: the daemon needs that long
	// beyond the signal wait to reap and report the container.
	StopGrace time.Duration
	Kill      time.Duration
	Remove    time.Duration
	Pull      time.Duration // whole pull, including reading the progress stream
	Import    time.Duration
	Network   time.Duration
	Stats     time.Duration
}

// DefaultTimeouts are generous for a loaded machine, short enough that a wedged
// daemon is noticed.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Ping:      5 * time.Second,
		Info:      15 * time.Second,
		Inspect:   15 * time.Second,
		List:      30 * time.Second,
		Create:    60 * time.Second,
		Start:     90 * time.Second,
		StopGrace: 30 * time.Second,
		Kill:      30 * time.Second,
		Remove:    60 * time.Second,
		Pull:      15 * time.Minute,
		Import:    5 * time.Minute,
		Network:   30 * time.Second,
		Stats:     15 * time.Second,
	}
}

// Config configures the Docker runtime.
type Config struct {
	// Host is the daemon address ("unix:///var/run/docker.sock",
	// "tcp://127.0.0.1:2375"); "" uses DOCKER_HOST or the default socket.
	Host string
	// Timeouts; zero fields take DefaultTimeouts' values.
	Timeouts Timeouts
}

// Runtime talks to one dockerd.
type Runtime struct {
	cli *client.Client
	t   Timeouts
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a runtime for the daemon cfg names. It does not contact the
// daemon; the API version is negotiated on the first call.
func New(cfg Config) (*Runtime, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Runtime{cli: cli, t: cfg.Timeouts.withDefaults()}, nil
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Ping, &d.Ping}, {&t.Info, &d.Info}, {&t.Inspect, &d.Inspect}, {&t.List, &d.List},
		{&t.Create, &d.Create}, {&t.Start, &d.Start}, {&t.StopGrace, &d.StopGrace}, {&t.Kill, &d.Kill},
		{&t.Remove, &d.Remove}, {&t.Pull, &d.Pull}, {&t.Import, &d.Import}, {&t.Network, &d.Network},
		{&t.Stats, &d.Stats},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Close releases the client's connections.
func (r *Runtime) Close() error { return r.cli.Close() }

// Ping checks that the daemon answers.
func (r *Runtime) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Ping)
	defer cancel()
	if _, err := r.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

// Info describes the daemon and its host.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, r.t.Info)
	defer cancel()
	in, err := r.cli.Info(ctx)
	if err != nil {
		return runtime.Info{}, fmt.Errorf("docker info: %w", err)
	}
	v, err := r.cli.ServerVersion(ctx)
	if err != nil {
		return runtime.Info{}, fmt.Errorf("docker version: %w", err)
	}
	out := runtime.Info{
		Cores:           in.NCPU,
		MemoryMiB:       in.MemTotal >> 20,
		ServerVersion:   in.ServerVersion,
		APIVersion:      v.APIVersion,
		MinAPIVersion:   v.MinAPIVersion,
		OSType:          in.OSType,
		Architecture:    in.Architecture,
		KernelVersion:   in.KernelVersion,
		OperatingSystem: in.OperatingSystem,
		Hostname:        in.Name,
		LogDrivers:      append([]string(nil), in.Plugins.Log...),
		DefaultRuntime:  in.DefaultRuntime,
		CgroupVersion:   in.CgroupVersion,
	}
	for name := range in.Runtimes {
		out.Runtimes = append(out.Runtimes, name)
	}
	sort.Strings(out.Runtimes)
	sort.Strings(out.LogDrivers)
	return out, nil
}

// classify wraps a daemon error so callers can test it with errors.Is against
// the runtime's sentinels, keeping the daemon's message.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, runtime.ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %w", op, runtime.ErrConflict, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out: %w", op, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}
