package node

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ecsd/ecsd/agent/runtime"
)

// What a node registers as (Fargate pool, EXTERNAL, node group) and which
// runtime a pool agent picks for FARGATE tasks.

type nopRuntime struct{ runtime.Runtime }

func TestRegistrationKinds(t *testing.T) {
	info := runtime.Info{APIVersion: "1.41"}
	cfg := Config{Fargate: true, InstanceType: "fargate", TMDSPort: 51680}
	r := Registration(&cfg, info, Capacity{CPU: 4096, MemoryMiB: 8192})
	if !r.Fargate || r.External || r.NodeGroup != "" || r.InstanceType != "fargate" {
		t.Fatalf("fargate registration %+v", r)
	}
	cfg = Config{External: true, NodeGroup: "ng", NodeID: "n-3"}
	r = Registration(&cfg, info, Capacity{CPU: 1024, MemoryMiB: 512})
	if r.Fargate || !r.External || r.NodeGroup != "ng" || r.NodeID != "n-3" {
		t.Fatalf("registration %+v", r)
	}
}

func TestConfigValidateKinds(t *testing.T) {
	base := Config{ServerURL: "http://x", DataDir: "/tmp/x", Runtime: nopRuntime{}}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Fargate, c.External = true, true }, "--external"},
		{func(c *Config) { c.Fargate, c.NodeGroup = true, "ng" }, "--node-group"},
		{func(c *Config) { c.NodeID = "n-1" }, "--node-id"},
		{func(c *Config) { c.FargateRuntime = "kata" }, "--fargate-runtime"},
		{func(c *Config) { c.Fargate, c.FargateRuntime = true, RuntimeRunsc }, ""},
		{func(c *Config) { c.NodeGroup, c.NodeID = "ng", "n-1" }, ""},
	} {
		c := base
		tc.mod(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
}

func TestChooseFargateRuntime(t *testing.T) {
	with := runtime.Info{Runtimes: []string{"io.containerd.runc.v2", "runc", "runsc"}}
	without := runtime.Info{Runtimes: []string{"runc"}}
	for _, tc := range []struct {
		fargate bool
		flag    string
		info    runtime.Info
		want    string
	}{
		{true, RuntimeAuto, with, "runsc"},
		{true, "", with, "runsc"},
		{true, RuntimeAuto, without, ""},
		{true, RuntimeRunc, with, ""},
		{true, RuntimeRunsc, with, "runsc"},
		{true, RuntimeRunsc, without, ""}, // asked for, missing: runc, with a warning
		{false, RuntimeAuto, with, ""},    // only pool agents run Fargate tasks
	} {
		n := &Node{cfg: Config{Fargate: tc.fargate, FargateRuntime: tc.flag}, log: slog.New(slog.DiscardHandler)}
		if got := n.chooseFargateRuntime(tc.info); got != tc.want {
			t.Errorf("fargate=%v flag=%q runtimes=%v: %q, want %q", tc.fargate, tc.flag, tc.info.Runtimes, got, tc.want)
		}
	}
}
