package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ecsd/ecsd/controlplane"
	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/provisioner/command"
	"github.com/ecsd/ecsd/provisioner/local"
)

// provisionerFlags say how node groups get machines (each has an ECSD_*
// environment equivalent, like the other server flags).
type provisionerFlags struct {
	kind         string
	dir          string
	launchCmd    string
	terminateCmd string
	agentBinary  string
	serverURL    string
}

// register adds the flags; defaultKind is "none" for `ecsd server` and
// "local" for `ecsd dev`.
func (f *provisionerFlags) register(fs *pflag.FlagSet, defaultKind string) {
	fs.StringVar(&f.kind, "provisioner", defaultKind, "how node groups get machines: none (node groups are recorded but never scaled), local (ecsd agent processes on this host) or command (the scripts below)")
	fs.StringVar(&f.dir, "provisioner-dir", "", "local provisioner: where node agents keep their data and logs (default: <data-dir>/nodes)")
	fs.StringVar(&f.launchCmd, "provisioner-launch-command", "", "command provisioner: shell command that starts a machine (gets ECSD_NODE_GROUP, ECSD_NODE_ID, ECSD_CLUSTER, ECSD_SERVER, ECSD_JOIN_TOKEN, ECSD_INSTANCE_TYPE, ECSD_CPU, ECSD_MEMORY, ECSD_AVAILABILITY_ZONE, ECSD_ATTRIBUTES) and prints its id")
	fs.StringVar(&f.terminateCmd, "provisioner-terminate-command", "", "command provisioner: shell command that removes a machine (gets ECSD_NODE_ID and ECSD_PROVIDER_ID)")
	fs.StringVar(&f.serverURL, "provisioner-server-url", "", "URL new nodes' agents reach this server at (default: http://<listen address>)")
	fs.StringVar(&f.agentBinary, "provisioner-agent-binary", "", "local provisioner: the ecsd binary to run agents with (default: this one)")
}

// build returns the configured provisioner (nil for none) and a function
// that releases it at shutdown (the local provisioner stops its agents).
// dataDir is the server's data dir, the default home of local agents.
func (f *provisionerFlags) build(dataDir string, log *slog.Logger) (provisioner.Provisioner, func() error, error) {
	noop := func() error { return nil }
	switch f.kind {
	case "", "none":
		if f.launchCmd != "" || f.terminateCmd != "" {
			return nil, noop, fmt.Errorf("--provisioner-launch-command and --provisioner-terminate-command need --provisioner command")
		}
		return nil, noop, nil
	case "local":
		dir := f.dir
		if dir == "" {
			if dataDir == "" {
				return nil, noop, fmt.Errorf("--provisioner local needs --provisioner-dir (or a --data-dir to put it in)")
			}
			dir = filepath.Join(dataDir, "nodes")
		}
		p, err := local.New(local.Config{Binary: f.agentBinary, Dir: dir, Logger: log})
		if err != nil {
			return nil, noop, err
		}
		return p, p.Close, nil
	case "command":
		p, err := command.New(command.Config{LaunchCommand: f.launchCmd, TerminateCommand: f.terminateCmd})
		if err != nil {
			return nil, noop, fmt.Errorf("--provisioner command: %w (set --provisioner-launch-command and --provisioner-terminate-command)", err)
		}
		return p, noop, nil
	}
	return nil, noop, fmt.Errorf("--provisioner %q: want none, local or command", f.kind)
}

// wireNodeGroups hands the provisioner to the control plane, whose leader
// then runs the node-group controller (controller/nodegroup) with it.
func wireNodeGroups(cfg *controlplane.Config, p provisioner.Provisioner, serverURL string) {
	if p == nil {
		return
	}
	cfg.Controllers.NodeGroups.Provisioner = p
	cfg.Controllers.NodeGroups.ServerURL = serverURL
}
