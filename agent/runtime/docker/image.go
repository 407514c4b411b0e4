package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/ecsd/ecsd/agent/runtime"
)

// ImageExists reports whether ref is present locally.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, ok, err := r.ImageLabels(ctx, ref)
	return ok, err
}

// ImageLabels returns a local image's labels and whether it exists.
func (r *Runtime) ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.t.Inspect)
	defer cancel()
	in, err := r.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify("inspect image "+ref, err)
	}
	var labels map[string]string
	if in.Config != nil {
		labels = in.Config.Labels
	}
	return labels, true, nil
}

// Pull fetches ref. Docker reports some failures as the HTTP answer and others
// (after the pull has begun) inside the progress stream, so the stream is read
// to its end; either way the result is a *runtime.PullError.
func (r *Runtime) Pull(ctx context.Context, ref string, auth *runtime.RegistryAuth) error {
	opts := image.PullOptions{}
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
			Username:      auth.Username,
			Password:      auth.Password,
			ServerAddress: auth.ServerAddress,
		})
		if err != nil {
			return &runtime.PullError{Ref: ref, Message: "encode registry credentials: " + err.Error(), Err: err}
		}
		opts.RegistryAuth = enc
	}
	ctx, cancel := context.WithTimeout(ctx, r.t.Pull)
	defer cancel()
	rc, err := r.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return pullError(ref, err)
	}
	defer rc.Close()
	if err := readProgress(rc); err != nil {
		return pullError(ref, err)
	}
	return nil
}

func pullError(ref string, err error) error {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out: " + msg
	}
	return &runtime.PullError{Ref: ref, Message: msg, Err: err}
}

// ImportImage creates image ref from a root filesystem tar stream (docker
// import), applying Dockerfile-style changes such as `CMD ["sh"]`.
func (r *Runtime) ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Import)
	defer cancel()
	rc, err := r.cli.ImageImport(ctx, image.ImportSource{Source: rootfs, SourceName: "-"}, ref,
		image.ImportOptions{Changes: changes, Message: "built by ecsd"})
	if err != nil {
		return classify("import image "+ref, err)
	}
	defer rc.Close()
	if err := readProgress(rc); err != nil {
		return fmt.Errorf("import image %s: %w", ref, err)
	}
	return nil
}

// progressMessage is the part of Docker's JSON progress messages that matters.
type progressMessage struct {
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readProgress drains a JSON progress stream and returns the error it reports.
func readProgress(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m progressMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(strings.TrimSpace(m.ErrorDetail.Message))
		}
		if m.Error != "" {
			return errors.New(strings.TrimSpace(m.Error))
		}
	}
}
