package engine_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// Containers with the awslogs log driver on the real daemon, as a Fargate
// Terraform example defines them (logging.go).

func awslogsContainer(name string, command ...string) ecs.ContainerDefinition {
	d := busybox(name, command...)
	d.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, Options: map[string]string{
		"awslogs-group": "/ecs/logs", "awslogs-region": "us-east-1",
		"awslogs-stream-prefix": "ecs", "awslogs-create-group": "true",
	}}
	return d
}

func dockerInspect(t *testing.T, format, id string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", format, id).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	return strings.TrimSpace(string(out))
}

// Without an endpoint the container logs to json-file and the task runs.
func TestAwslogsWithoutEndpointDocker(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	a := assignment("awslogs", ecs.NetworkModeBridge, awslogsContainer("app", "sh", "-c", "echo hello-logs; sleep 600"))
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 60*time.Second)
	id := container(sc, "app").RuntimeID
	if got := dockerInspect(t, "{{.HostConfig.LogConfig.Type}}", id); got != "json-file" {
		t.Errorf("log driver %q, want json-file", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("docker", "logs", id).CombinedOutput()
		if strings.Contains(string(out), "hello-logs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker logs: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
	h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
}

// With --awslogs-endpoint the container's output goes there (a CloudWatch
// Logs stand-in on loopback), in the stream ECS would name. Docker's driver
// needs credentials in dockerd's environment: without them it skips.
func TestAwslogsEndpointDocker(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	var messages strings.Builder
	cwl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		body, _ := io.ReadAll(r.Body)
		var in struct {
			LogStreamName string
			LogEvents     []struct{ Message string }
		}
		_ = json.Unmarshal(body, &in)
		mu.Lock()
		calls = append(calls, target+" "+in.LogStreamName)
		for _, e := range in.LogEvents {
			messages.WriteString(e.Message + "\n")
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if strings.HasSuffix(target, "PutLogEvents") {
			_, _ = io.WriteString(w, `{"nextSequenceToken":"1"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer cwl.Close()

	h := start(t, "", func(c *engine.Config) { c.AwslogsEndpoint = cwl.URL })
	a := assignment("awslogs", ecs.NetworkModeBridge, awslogsContainer("app", "sh", "-c", "echo hello-cwl; sleep 600"))
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.wait(t, a.TaskArn, 60*time.Second, "RUNNING or STOPPED", func(sc agentapi.StateChange) bool {
		return sc.Status == "RUNNING" || sc.Status == "STOPPED"
	})
	if sc.Status == "STOPPED" {
		if strings.Contains(sc.StoppedReason, "NoCredentialProviders") {
			t.Skip("dockerd has no AWS credentials in its environment: " + sc.StoppedReason)
		}
		t.Fatalf("task stopped: %s", sc.StoppedReason)
	}
	if got := dockerInspect(t, "{{.HostConfig.LogConfig.Type}}", container(sc, "app").RuntimeID); got != "awslogs" {
		t.Fatalf("log driver %q, want awslogs (does task.specContext in start.go pass Config.AwslogsEndpoint?)", got)
	}
	taskID := a.TaskArn[strings.LastIndex(a.TaskArn, "/")+1:]
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		got, all := messages.String(), strings.Join(calls, "; ")
		mu.Unlock()
		if strings.Contains(got, "hello-cwl") {
			if !strings.Contains(all, "ecs/app/"+taskID) {
				t.Errorf("calls %s: want the stream ecs/app/%s", all, taskID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log event arrived; calls: %s", all)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{stopped(a)}})
	h.rec.waitStatus(t, a.TaskArn, "STOPPED", 30*time.Second)
}
