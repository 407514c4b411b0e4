package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/ecsd/ecsd/agent/runtime"
)

// Create creates a container from spec and returns its id.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	cfg, hc, nc, err := createConfig(spec)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, r.t.Create)
	defer cancel()
	resp, err := r.cli.ContainerCreate(ctx, cfg, hc, nc, nil, spec.Name)
	if err != nil {
		return "", classify("create container "+spec.Name, err)
	}
	return resp.ID, nil
}

// Start starts a container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Start)
	defer cancel()
	return classify("start container "+id, r.cli.ContainerStart(ctx, id, container.StartOptions{}))
}

// Stop sends SIGTERM (or the image's stop signal), then SIGKILL after timeout.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	opts := container.StopOptions{}
	wait := 10 * time.Second // Docker's default when no timeout is given
	if timeout >= 0 {
		secs := ceilSeconds(timeout)
		opts.Timeout = &secs
		wait = time.Duration(secs) * time.Second
	} else if st, err := r.inspect(ctx, id); err == nil && st.stopTimeout > 0 {
		wait = st.stopTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, wait+r.t.StopGrace)
	defer cancel()
	return classify("stop container "+id, r.cli.ContainerStop(ctx, id, opts))
}

// Kill sends a signal.
func (r *Runtime) Kill(ctx context.Context, id, signal string) error {
	if signal == "" {
		signal = "SIGKILL"
	}
	ctx, cancel := context.WithTimeout(ctx, r.t.Kill)
	defer cancel()
	return classify("kill container "+id, r.cli.ContainerKill(ctx, id, signal))
}

// Remove deletes a container and its anonymous volumes.
func (r *Runtime) Remove(ctx context.Context, id string, force bool) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Remove)
	defer cancel()
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: force, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return classify("remove container "+id, err)
}

// Inspect returns a container's state.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerState, error) {
	st, err := r.inspect(ctx, id)
	return st.ContainerState, err
}

// inspected carries what Stop needs beyond the public state.
type inspected struct {
	runtime.ContainerState
	stopTimeout time.Duration
}

func (r *Runtime) inspect(ctx context.Context, id string) (inspected, error) {
	ctx, cancel := context.WithTimeout(ctx, r.t.Inspect)
	defer cancel()
	in, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return inspected{}, classify("inspect container "+id, err)
	}
	out := inspected{ContainerState: stateFromInspect(in)}
	if in.Config != nil && in.Config.StopTimeout != nil {
		out.stopTimeout = time.Duration(*in.Config.StopTimeout) * time.Second
	}
	return out, nil
}

// List returns the containers carrying every label in labels.
func (r *Runtime) List(ctx context.Context, labels map[string]string, all bool) ([]runtime.ContainerState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.t.List)
	defer cancel()
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: all, Filters: labelFilters(labels)})
	if err != nil {
		return nil, classify("list containers", err)
	}
	out := make([]runtime.ContainerState, 0, len(list))
	for _, s := range list {
		out = append(out, stateFromSummary(s))
	}
	return out, nil
}

// Stats returns one Docker stats sample as the daemon encoded it.
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, r.t.Stats)
	defer cancel()
	resp, err := r.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return nil, classify("stats of container "+id, err)
	}
	defer resp.Body.Close()
	// One JSON document; a bound keeps a misbehaving daemon from growing it.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, classify("stats of container "+id, err)
	}
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("stats of container %s: decode: %w", id, err)
	}
	return raw, nil
}

// labelFilters turns a selector into Docker's label filter: "k=v", or just
// "k" when v is "" (any value). Docker ANDs several label filters.
func labelFilters(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}
