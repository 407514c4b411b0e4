package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/provisioner/local"
)

// fakeAgent is a script standing in for `ecsd agent`: it writes its
// arguments and sleeps until signalled.
const fakeAgent = `#!/bin/sh
echo "$@" > args
trap 'echo stopped > stopped; exit 0' TERM
while :; do sleep 0.05; done
`

func TestLocalLaunchAndTerminate(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "ecsd")
	if err := os.WriteFile(bin, []byte(fakeAgent), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := local.New(local.Config{Binary: bin, Dir: filepath.Join(dir, "nodes"), StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := provisioner.LaunchRequest{Group: "web", NodeID: "web-1", Cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/default",
		ServerURL: "http://127.0.0.1:1", JoinToken: "tok", InstanceType: "ecsd.small", CPU: 1024, Memory: 2048,
		AvailabilityZone: "us-east-1b", Attributes: map[string]string{"b": "2", "a": "1"}}
	id, err := p.Launch(context.Background(), req)
	if err != nil || id == "" {
		t.Fatalf("launch: %q %v", id, err)
	}
	nodeDir := filepath.Join(dir, "nodes", "web", "web-1")
	var args string
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(nodeDir, "args"))
		if args = string(b); args != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"agent ", "--server http://127.0.0.1:1", "--cluster arn:aws:ecs:us-east-1:123456789012:cluster/default",
		"--join-token tok", "--data-dir " + nodeDir, "--cpu 1024", "--memory 2048", "--instance-type ecsd.small",
		"--availability-zone us-east-1b", "--attributes a=1,b=2", "--node-group web", "--node-id web-1", "--tmds-port "} {
		if !strings.Contains(args, want) {
			t.Errorf("agent args %q lack %q", args, want)
		}
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "agent.log")); err != nil {
		t.Errorf("no log file: %v", err)
	}
	if p.Running() != 1 {
		t.Fatalf("running %d", p.Running())
	}
	if err := p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "web", NodeID: "web-1", ProviderID: id}); err != nil {
		t.Fatal(err)
	}
	if p.Running() != 0 {
		t.Fatal("still running after Terminate")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "stopped")); err != nil {
		t.Error("agent did not get SIGTERM")
	}
	// Terminating again, or something never launched, succeeds.
	if err := p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "web", NodeID: "web-1", ProviderID: id}); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "web", NodeID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	// Close stops whatever still runs and refuses new launches.
	req.NodeID = "web-2"
	if _, err := p.Launch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if p.Running() != 0 {
		t.Fatal("Close left agents running")
	}
	if _, err := p.Launch(context.Background(), req); err == nil {
		t.Fatal("launch after Close succeeded")
	}
	req.NodeID = "../escape"
	if _, err := p.Launch(context.Background(), req); err == nil {
		t.Fatal("a node id with a path separator was accepted")
	}
}

func TestLocalKillsAgentsIgnoringSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "ecsd")
	os.WriteFile(bin, []byte("#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n"), 0o755)
	p, _ := local.New(local.Config{Binary: bin, Dir: dir, StopTimeout: 300 * time.Millisecond})
	defer p.Close()
	id, err := p.Launch(context.Background(), provisioner.LaunchRequest{Group: "g", NodeID: "g-1"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the trap be installed
	start := time.Now()
	p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "g", NodeID: "g-1", ProviderID: id})
	if p.Running() != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("not killed (running %d after %s)", p.Running(), time.Since(start))
	}
}
