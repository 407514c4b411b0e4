package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/agent/engine"
	"github.com/ecsd/ecsd/agent/node"
	"github.com/ecsd/ecsd/agent/runtime/docker"
	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/internal/testimage"
)

// need skips (or, with ECSD_E2E_REQUIRED=1, fails) when a tool is missing.
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("ECSD_E2E_REQUIRED") == "1" {
		t.Fatalf("%s is required (ECSD_E2E_REQUIRED=1)", what)
	}
	t.Skipf("%s not available", what)
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestNodeEndToEnd: a control plane and an in-process agent on the real
// Docker runtime; the aws CLI runs a busybox httpd task in bridge mode, waits
// for it, reaches it through its host port, stops it and waits again.
func TestNodeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	_, err := exec.LookPath("aws")
	need(t, "the aws CLI", err == nil)
	_, sockErr := os.Stat("/var/run/docker.sock")
	need(t, "a Docker socket", os.Getenv("DOCKER_HOST") != "" || sockErr == nil)
	rt, err := docker.New(docker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	perr := rt.Ping(pctx)
	cancel()
	need(t, "dockerd", perr == nil)
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	image, err := testimage.Ensure(bctx, rt)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	level := slog.LevelInfo
	if os.Getenv("ECSD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: level}))
	const account = "123456789012"
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	cp, err := controlplane.Start(sctx, controlplane.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: log.With("side", "server"),
		Auth: auth.Config{Mode: auth.Dev, DefaultAccount: account, DefaultRegion: "us-east-1", MaxSkew: 15 * time.Minute},
		API:  apiserver.Config{DevMode: true, Version: "test"},
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	if cp.JoinToken() == "" {
		t.Fatal("no join token generated")
	}

	n, err := node.New(node.Config{
		ServerURL: cp.URL(), JoinToken: cp.JoinToken(), DataDir: t.TempDir(),
		InstanceType: "ecsd.test", TMDSPort: -1, Runtime: rt, Version: "test",
		Attributes: map[string]string{"suite": "node"},
		Logger:     log.With("side", "agent"),
	})
	if err != nil {
		t.Fatal(err)
	}
	nctx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nctx) }()
	var instanceArn string
	t.Cleanup(func() {
		stopNode()
		if err := <-nodeDone; err != nil {
			t.Errorf("node: %v", err)
		}
		// The engine keeps stopped containers for a while; remove this test's.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if instanceArn != "" {
			cs, _ := rt.List(cctx, map[string]string{engine.LabelInstance: instanceArn}, true)
			for _, c := range cs {
				rt.Remove(cctx, c.ID, true)
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for n.Session() == nil || !n.Session().Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not connect")
		}
		select {
		case err := <-nodeDone:
			t.Fatalf("node stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	instanceArn = n.Session().InstanceARN()

	cl := testenv.NewClient(cp.URL(), "AKIDTEST", "secret", "us-east-1")
	// The server records the connection a moment after the agent sees it open.
	var ci *awsecs.DescribeContainerInstancesOutput
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ci, err = cl.DescribeContainerInstances(ctx, &awsecs.DescribeContainerInstancesInput{ContainerInstances: []string{instanceArn}})
		if err != nil || len(ci.ContainerInstances) != 1 {
			t.Fatalf("describe instance: %+v %v", ci, err)
		}
		if ci.ContainerInstances[0].AgentConnected || time.Now().After(deadline) {
			break
		}
	}
	inst := ci.ContainerInstances[0]
	if !inst.AgentConnected || aws.ToString(inst.VersionInfo.AgentVersion) != "test" || !strings.HasPrefix(aws.ToString(inst.VersionInfo.DockerVersion), "DockerVersion: ") {
		t.Fatalf("instance %+v", inst)
	}
	attrs := map[string]string{}
	for _, a := range inst.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	for _, name := range []string{"ecs.os-type", "ecs.cpu-architecture", "ecs.instance-type", "ecs.availability-zone", "suite",
		"com.amazonaws.ecs.capability.docker-remote-api.1.17", "com.amazonaws.ecs.capability.logging-driver.json-file", "ecs.capability.task-eni"} {
		if _, ok := attrs[name]; !ok {
			t.Errorf("attribute %s missing", name)
		}
	}

	if _, err := cl.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family:      aws.String("web"),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("httpd"), Image: aws.String(image), Memory: aws.Int32(64), Essential: aws.Bool(true),
			Command:         []string{"sh", "-c", "echo hello-from-ecsd > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"},
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
			PortMappings:    []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0)}},
		}},
	}); err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) string {
		t.Helper()
		args = append(args, "--endpoint-url", cp.URL(), "--region", "us-east-1", "--output", "json")
		cmd := exec.Command("aws", args...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=/dev/null",
			"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("$ aws %s (%.2fs)", strings.Join(args[:2], " "), time.Since(start).Seconds())
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	start := time.Now()
	var run struct {
		Tasks    []struct{ TaskArn string }
		Failures []any
	}
	if err := json.Unmarshal([]byte(cli("ecs", "run-task", "--task-definition", "web")), &run); err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run-task: %+v %v", run, err)
	}
	taskArn := run.Tasks[0].TaskArn
	cli("ecs", "wait", "tasks-running", "--tasks", taskArn)
	t.Logf("run-task → tasks-running: %v", time.Since(start).Round(time.Millisecond))

	dt, err := cl.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Tasks: []string{taskArn}})
	if err != nil || len(dt.Tasks) != 1 {
		t.Fatalf("describe: %+v %v", dt, err)
	}
	task := dt.Tasks[0]
	if aws.ToString(task.ContainerInstanceArn) != instanceArn || len(task.Containers) != 1 || len(task.Containers[0].NetworkBindings) != 1 {
		t.Fatalf("task %+v", task)
	}
	port := aws.ToInt32(task.Containers[0].NetworkBindings[0].HostPort)
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET host port %d: %v %q", port, err, body)
		}
	}
	if !strings.Contains(body, "hello-from-ecsd") {
		t.Fatalf("task answered %q", body)
	}

	start = time.Now()
	cli("ecs", "stop-task", "--task", taskArn, "--reason", "test done")
	cli("ecs", "wait", "tasks-stopped", "--tasks", taskArn)
	t.Logf("stop-task → tasks-stopped: %v", time.Since(start).Round(time.Millisecond))
	dt, err = cl.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Tasks: []string{taskArn}})
	if err != nil || len(dt.Tasks) != 1 {
		t.Fatalf("describe: %+v %v", dt, err)
	}
	task = dt.Tasks[0]
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("stopped task: status %s stopCode %s reason %q", aws.ToString(task.LastStatus), task.StopCode, aws.ToString(task.StoppedReason))
	}
	ci, _ = cl.DescribeContainerInstances(ctx, &awsecs.DescribeContainerInstancesInput{ContainerInstances: []string{instanceArn}})
	if got := ci.ContainerInstances[0]; got.RunningTasksCount != 0 {
		t.Fatalf("instance still counts %d running tasks", got.RunningTasksCount)
	}

	// Wiping the server's state (ecsd dev's reset) leaves nothing to manage a
	// running task: the agent joins as a new instance and removes the old
	// instance's containers.
	if err := json.Unmarshal([]byte(cli("ecs", "run-task", "--task-definition", "web")), &run); err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run-task: %+v %v", run, err)
	}
	cli("ecs", "wait", "tasks-running", "--tasks", run.Tasks[0].TaskArn)
	resp, err := http.Post(cp.URL()+"/ecsd/reset", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reset: %v %v", resp, err)
	}
	resp.Body.Close()
	old := instanceArn
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cs, err := rt.List(ctx, map[string]string{engine.LabelInstance: old}, true)
		if err == nil && len(cs) == 0 && n.Session().InstanceARN() != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reset: instance %s, %d containers of the old one left (%v)", n.Session().InstanceARN(), len(cs), err)
		}
	}
	instanceArn = n.Session().InstanceARN()
	list, err := cl.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{})
	if err != nil || len(list.ContainerInstanceArns) != 1 || list.ContainerInstanceArns[0] != instanceArn {
		t.Fatalf("instances after reset: %+v %v", list, err)
	}
}
