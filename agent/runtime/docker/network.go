package docker

import (
	"context"
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"github.com/ecsd/ecsd/agent/runtime"
)

// EnsureNetwork creates the user-defined bridge network name with subnetCIDR,
// or accepts an existing one with the same subnet.
func (r *Runtime) EnsureNetwork(ctx context.Context, name, subnetCIDR string) (string, error) {
	want, err := netip.ParsePrefix(subnetCIDR)
	if err != nil {
		return "", fmt.Errorf("network %s: subnet %q: %w", name, subnetCIDR, err)
	}
	want = want.Masked()
	ctx, cancel := context.WithTimeout(ctx, r.t.Network)
	defer cancel()

	if id, found, err := r.existingNetwork(ctx, name, want); found || err != nil {
		return id, err
	}
	resp, err := r.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: want.String()}}},
		Labels: map[string]string{runtime.LabelManaged: "true"},
	})
	if cerrdefs.IsConflict(err) {
		// Created concurrently by someone else: accept it if it matches.
		if id, found, err := r.existingNetwork(ctx, name, want); found || err != nil {
			return id, err
		}
	}
	if err != nil {
		return "", classify("create network "+name, err)
	}
	return resp.ID, nil
}

// existingNetwork looks name up; found is false when it does not exist.
func (r *Runtime) existingNetwork(ctx context.Context, name string, want netip.Prefix) (id string, found bool, err error) {
	in, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify("inspect network "+name, err)
	}
	if in.Name != name {
		// Docker also matches id prefixes; only an exact name counts.
		return "", false, nil
	}
	for _, c := range in.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Masked() == want {
			return in.ID, true, nil
		}
	}
	return "", true, fmt.Errorf("network %s exists without subnet %s: %w", name, want, runtime.ErrConflict)
}

// RemoveNetwork deletes a network; a missing one is not an error.
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, r.t.Network)
	defer cancel()
	err := r.cli.NetworkRemove(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return classify("remove network "+name, err)
}
