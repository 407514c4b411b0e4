package engine_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
)

// A container reads its own task, itself, its stats and its task's stats from
// the metadata endpoint named in its environment (v4 and v3).
func TestMetadataFromContainer(t *testing.T) {
	t.Parallel()
	h := start(t, "")
	out := outDir(t)
	app := busybox("app", "sh", "-c", `b=$ECS_CONTAINER_METADATA_URI_V4
wget -qO /out/container.json "$b" && wget -qO /out/task.json "$b/task" &&
wget -qO /out/tags.json "$b/taskWithTags" && wget -qO /out/stats.json "$b/stats" &&
wget -qO /out/taskstats.json "$b/task/stats" && wget -qO /out/v3.json "$ECS_CONTAINER_METADATA_URI/task" &&
echo ok > /out/done
exec sleep 300`)
	app.DockerLabels = map[string]string{"com.example.team": "ecsd"}
	app.Cpu = 128
	app.LinuxParameters = &ecs.LinuxParameters{InitProcessEnabled: boolp(true)}
	side := busybox("side", "sleep", "300")
	a := assignment("metadata", ecs.NetworkModeBridge, app, side)
	a.Definition.Cpu = "512"
	a.Definition.Memory = "256"
	mountOut(&a, out, "app")
	h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
	sc := h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
	waitFile(t, out+"/done", 15*time.Second)
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(out + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
	}

	var task struct {
		Cluster, TaskARN, Family, Revision, DesiredStatus, KnownStatus, AvailabilityZone, LaunchType string
		Limits                                                                                       struct{ CPU, Memory float64 }
		TaskTags                                                                                     map[string]string
		Containers                                                                                   []map[string]any
	}
	read("task.json", &task)
	if task.Cluster != "test" || task.TaskARN != a.TaskArn || task.Family != "metadata" || task.Revision != "3" ||
		task.DesiredStatus != "RUNNING" || task.AvailabilityZone != "us-east-1a" || task.LaunchType != "EC2" ||
		task.Limits.CPU != 0.5 || task.Limits.Memory != 256 || task.TaskTags != nil {
		t.Errorf("task = %+v", task)
	}
	if len(task.Containers) != 2 {
		t.Fatalf("%d containers in the task", len(task.Containers))
	}
	var tags struct{ TaskTags map[string]string }
	read("tags.json", &tags)
	if tags.TaskTags["team"] != "ecsd" {
		t.Errorf("taskWithTags: TaskTags = %v", tags.TaskTags)
	}

	var self struct {
		DockerId, Name, DockerName, Image, ImageID, KnownStatus, Type string
		Labels                                                        map[string]string
		Limits                                                        struct{ CPU, Memory float64 }
		CreatedAt, StartedAt                                          *time.Time
		Networks                                                      []struct {
			NetworkMode   string
			IPv4Addresses []string
		}
	}
	read("container.json", &self)
	appState := container(sc, "app")
	if self.DockerId != appState.RuntimeID || self.Name != "app" || !strings.HasPrefix(self.DockerName, "ecs-metadata-3-app-") ||
		self.Image != a.Definition.ContainerDefinitions[0].Image || !strings.HasPrefix(self.ImageID, "sha256:") ||
		self.KnownStatus != "RUNNING" || self.Type != "NORMAL" || self.Limits.CPU != 128 || self.Limits.Memory != 64 ||
		self.CreatedAt == nil || self.StartedAt == nil {
		t.Errorf("container = %+v", self)
	}
	for k, v := range map[string]string{"com.example.team": "ecsd", "com.amazonaws.ecs.task-arn": a.TaskArn,
		"com.amazonaws.ecs.container-name": "app", "com.amazonaws.ecs.task-definition-family": "metadata",
		"com.amazonaws.ecs.task-definition-version": "3", "com.amazonaws.ecs.cluster": "test"} {
		if self.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, self.Labels[k], v)
		}
	}
	if _, leaked := self.Labels["ecsd.metadata-token"]; leaked {
		t.Error("the metadata token is visible in the labels")
	}
	if len(self.Networks) != 1 || self.Networks[0].NetworkMode != "bridge" || len(self.Networks[0].IPv4Addresses) != 1 {
		t.Errorf("networks = %+v", self.Networks)
	}

	var stats struct {
		Read     string
		MemStats struct{ Usage uint64 } `json:"memory_stats"`
	}
	read("stats.json", &stats)
	if stats.Read == "" || stats.MemStats.Usage == 0 {
		t.Errorf("stats = %+v", stats)
	}
	var taskStats map[string]json.RawMessage
	read("taskstats.json", &taskStats)
	if len(taskStats) != 2 || taskStats[appState.RuntimeID] == nil || taskStats[container(sc, "side").RuntimeID] == nil {
		t.Errorf("task stats for %d containers", len(taskStats))
	}
	var v3 map[string]any
	read("v3.json", &v3)
	if v3["TaskARN"] != a.TaskArn {
		t.Errorf("v3 task = %v", v3)
	}
	if _, ok := v3["LaunchType"]; ok {
		t.Error("v3 shows LaunchType, a v4 field")
	}

	// An unknown token is a 404 with a JSON body.
	resp, err := http.Get(h.tmds.BaseURL("host") + "/v4/nope-123/task")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !json.Valid(body) {
		t.Errorf("unknown token: %d %s", resp.StatusCode, body)
	}
}
