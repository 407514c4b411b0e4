package command_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/provisioner"
	"github.com/ecsd/ecsd/provisioner/command"
)

func TestCommandLaunchAndTerminate(t *testing.T) {
	dir := t.TempDir()
	p, err := command.New(command.Config{
		LaunchCommand:    `echo "starting" >&2; echo "$ECSD_NODE_GROUP $ECSD_NODE_ID $ECSD_CLUSTER $ECSD_SERVER $ECSD_JOIN_TOKEN $ECSD_INSTANCE_TYPE $ECSD_CPU $ECSD_MEMORY $ECSD_AVAILABILITY_ZONE $ECSD_ATTRIBUTES" > ` + dir + `/env; echo noise; echo "m-$ECSD_NODE_ID"`,
		TerminateCommand: `[ "$ECSD_PROVIDER_ID" = "m-web-1" ] && [ "$ECSD_NODE_ID" = "web-1" ] || { echo "bad env: $ECSD_NODE_ID $ECSD_PROVIDER_ID" >&2; exit 3; }`,
		Env:              []string{"PATH=/usr/bin:/bin", "ECSD_SECRET_ACCESS_KEY=leak"},
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Launch(context.Background(), provisioner.LaunchRequest{Group: "web", NodeID: "web-1", Cluster: "arn:c", ServerURL: "http://s",
		JoinToken: "tok", InstanceType: "ecsd.small", CPU: 1024, Memory: 2048, AvailabilityZone: "z", Attributes: map[string]string{"k": "v"}})
	if err != nil || id != "m-web-1" {
		t.Fatalf("launch: %q %v", id, err)
	}
	if err := p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "web", NodeID: "web-1", ProviderID: id}); err != nil {
		t.Fatal(err)
	}
	err = p.Terminate(context.Background(), provisioner.TerminateRequest{Group: "web", NodeID: "web-2", ProviderID: "x"})
	if err == nil || !strings.Contains(err.Error(), "bad env: web-2 x") {
		t.Fatalf("stderr not in the error: %v", err)
	}
}

func TestCommandFailures(t *testing.T) {
	p, _ := command.New(command.Config{LaunchCommand: `true`, TerminateCommand: `sleep 10`, TerminateTimeout: 200 * time.Millisecond})
	if _, err := p.Launch(context.Background(), provisioner.LaunchRequest{NodeID: "n"}); err == nil || !strings.Contains(err.Error(), "no machine id") {
		t.Errorf("empty stdout: %v", err)
	}
	start := time.Now()
	if err := p.Terminate(context.Background(), provisioner.TerminateRequest{NodeID: "n"}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v", err)
	}
	if time.Since(start) > 6*time.Second {
		t.Errorf("timeout not bounded: %s", time.Since(start))
	}
	if _, err := command.New(command.Config{LaunchCommand: "x"}); err == nil {
		t.Error("missing terminate command accepted")
	}
	p, _ = command.New(command.Config{LaunchCommand: `echo "n$(env | grep -c '^ECSD_SECRET')"`, TerminateCommand: "true", Env: []string{"PATH=/usr/bin:/bin", "ECSD_SECRET_ACCESS_KEY=leak"}})
	if id, err := p.Launch(context.Background(), provisioner.LaunchRequest{NodeID: "n"}); err != nil || id != "n0" {
		t.Errorf("%q %v", id, err)
	}
}
