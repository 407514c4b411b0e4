package docker

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
)

// RemoveVolume deletes a named volume (the engine's task-scoped volumes); a
// missing one is not an error.
func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Remove)
	defer cancel()
	err := r.cli.VolumeRemove(ctx, name, true)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return classify("remove volume "+name, err)
}
