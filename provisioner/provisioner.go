// Package provisioner is how node groups get and give back machines. The
// node-group controller (controller/nodegroup) decides how many nodes a group
// needs; a Provisioner makes each one exist as a machine running `ecsd agent`
// that joins the group's cluster with --node-group/--node-id, and removes it
// again. Implementations: provisioner/local (agent processes on this host) and
// provisioner/command (operator scripts that add or remove real machines).
package provisioner

import (
	"context"
	"sort"
	"strings"
)

// LaunchRequest describes one node to start.
type LaunchRequest struct {
	// Group and NodeID identify the node; the agent reports both when it
	// registers, which is how the controller links instance and node.
	Group  string
	NodeID string
	// Cluster is the cluster ARN the agent joins (an ARN carries the account
	// and region); Account and Region are given apart for convenience.
	Cluster string
	Account string
	Region  string
	// ServerURL and JoinToken are what the agent needs to register.
	ServerURL string
	JoinToken string
	// The node's template.
	InstanceType     string
	CPU              int
	Memory           int64
	AvailabilityZone string
	Attributes       map[string]string
}

// TerminateRequest names one node to remove. ProviderID is what Launch
// returned ("" when the launch never answered).
type TerminateRequest struct {
	Group      string
	NodeID     string
	ProviderID string
}

// Provisioner starts and stops a group's machines. Both calls must be safe
// to repeat: the controller retries after failures and after a leader change
// (a Terminate of a machine already gone succeeds).
type Provisioner interface {
	// Launch starts the node's machine and returns the provider's handle for it.
	Launch(ctx context.Context, req LaunchRequest) (providerID string, err error)
	// Terminate stops and removes the node's machine.
	Terminate(ctx context.Context, req TerminateRequest) error
}

// FormatAttributes renders attributes as the agent's --attributes value
// (name=value,name2=value2), sorted so it is stable.
func FormatAttributes(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+attrs[k])
	}
	return strings.Join(parts, ",")
}
