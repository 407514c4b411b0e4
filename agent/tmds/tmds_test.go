package tmds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeSource struct {
	task  Task
	ids   map[string]string // token → docker id
	stats map[string]string
}

func (f *fakeSource) Lookup(token string) (Task, string, bool) {
	id, ok := f.ids[token]
	return f.task, id, ok
}

func (f *fakeSource) Stats(_ context.Context, id string) (json.RawMessage, error) {
	s, ok := f.stats[id]
	if !ok {
		return nil, errors.New("not running")
	}
	return json.RawMessage(s), nil
}

func newFake() *fakeSource {
	cpu, mem := 0.25, int64(512)
	ccpu, cmem := 2.0, int64(0)
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	zero := 0
	return &fakeSource{
		task: Task{
			Cluster: "default", TaskARN: "arn:aws:ecs:us-east-1:1:task/default/abc", Family: "web", Revision: "4",
			DesiredStatus: "RUNNING", KnownStatus: "RUNNING", Limits: &Limits{CPU: &cpu, Memory: &mem},
			AvailabilityZone: "us-east-1a", LaunchType: "EC2", TaskTags: map[string]string{"team": "x"},
			ContainerInstanceTags: map[string]string{"rack": "1"},
			Containers: []Container{
				{DockerID: "d1", Name: "app", DockerName: "ecs-web-4-app-1", Image: "img", ImageID: "sha256:1",
					DesiredStatus: "RUNNING", KnownStatus: "RUNNING", Limits: Limits{CPU: &ccpu, Memory: &cmem},
					StartedAt: &started, Type: TypeNormal, LogDriver: "json-file", ContainerARN: "arn:c",
					Ports:    []Port{{ContainerPort: 80, Protocol: "tcp", HostPort: 80, HostIP: "0.0.0.0"}},
					Networks: []Network{{NetworkMode: "awsvpc", IPv4Addresses: []string{"10.0.0.2"}, AttachmentIndex: &zero, MACAddress: "m"}}},
				{DockerID: "d2", Name: PauseName, Type: TypeCNIPause, KnownStatus: "RESOURCES_PROVISIONED"},
			},
		},
		ids:   map[string]string{"tok": "d1", "early": ""},
		stats: map[string]string{"d1": `{"read":"now"}`},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", path, ct)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return rec.Code, m, body
}

func TestRoutes(t *testing.T) {
	s := New(Config{Port: -1})
	s.SetSource(newFake())
	h := s.Handler()

	code, c, _ := get(t, h, "/v4/tok")
	if code != 200 || c["DockerId"] != "d1" || c["Name"] != "app" || c["ContainerARN"] != "arn:c" || c["LogDriver"] != "json-file" {
		t.Errorf("v4 container: %d %v", code, c)
	}
	nets := c["Networks"].([]any)[0].(map[string]any)
	if nets["MACAddress"] != "m" || nets["AttachmentIndex"] != 0.0 {
		t.Errorf("v4 networks %v", nets)
	}

	code, task, _ := get(t, h, "/v4/tok/task")
	if code != 200 || task["TaskARN"] != "arn:aws:ecs:us-east-1:1:task/default/abc" || task["LaunchType"] != "EC2" ||
		task["TaskTags"] != nil || task["ContainerInstanceTags"] != nil || len(task["Containers"].([]any)) != 2 ||
		task["FaultInjectionEnabled"] != false {
		t.Errorf("v4 task: %d %v", code, task)
	}
	if l := task["Limits"].(map[string]any); l["CPU"] != 0.25 || l["Memory"] != 512.0 {
		t.Errorf("limits %v", l)
	}
	_, tags, _ := get(t, h, "/v4/tok/taskWithTags")
	if tags["TaskTags"].(map[string]any)["team"] != "x" || tags["ContainerInstanceTags"].(map[string]any)["rack"] != "1" {
		t.Errorf("taskWithTags %v", tags)
	}

	_, v3c, _ := get(t, h, "/v3/tok")
	if v3c["DockerId"] != "d1" || v3c["ContainerARN"] != nil || v3c["LogDriver"] != nil {
		t.Errorf("v3 container %v", v3c)
	}
	if p := v3c["Ports"].([]any)[0].(map[string]any); p["HostIp"] != nil || p["HostPort"] != 80.0 {
		t.Errorf("v3 ports %v", p)
	}
	if n := v3c["Networks"].([]any)[0].(map[string]any); n["MACAddress"] != nil || n["NetworkMode"] != "awsvpc" {
		t.Errorf("v3 networks %v", n)
	}
	_, v3t, _ := get(t, h, "/v3/tok/task")
	if v3t["LaunchType"] != nil || v3t["TaskARN"] == nil {
		t.Errorf("v3 task %v", v3t)
	}

	code, _, body := get(t, h, "/v4/tok/stats")
	if code != 200 || body != `{"read":"now"}` {
		t.Errorf("stats %d %s", code, body)
	}
	code, _, body = get(t, h, "/v4/tok/task/stats")
	if code != 200 || body != `{"d1":{"read":"now"},"d2":null}` {
		t.Errorf("task stats %d %s", code, body)
	}

	for _, p := range []string{"/v4/unknown", "/v4/unknown/task", "/v3/unknown/stats", "/v4/tok/nope", "/v5/tok", "/", "/v4/"} {
		code, _, body := get(t, h, p)
		if code != 404 || !json.Valid([]byte(body)) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	// A container that exists only as a token so far: its task answers, it does not.
	if code, _, _ := get(t, h, "/v4/early"); code != 404 {
		t.Errorf("uncreated container: %d", code)
	}
	if code, _, _ := get(t, h, "/v4/early/task"); code != 200 {
		t.Errorf("task of an uncreated container: %d", code)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v4/tok", strings.NewReader("{}")))
	if rec.Code != 405 {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestNoSource(t *testing.T) {
	s := New(Config{Port: -1})
	if code, _, _ := get(t, s.Handler(), "/v4/tok"); code != 404 {
		t.Errorf("no source: %d", code)
	}
}

func TestListen(t *testing.T) {
	s := New(Config{Port: -1})
	s.SetSource(newFake())
	base, err := s.Listen("127.0.0.1", "host", "none")
	if err != nil {
		t.Fatal(err)
	}
	if s.BaseURL("host") != base || s.BaseURL("none") != base || s.BaseURL("bridge") != "" {
		t.Errorf("bases: host=%q none=%q bridge=%q", s.BaseURL("host"), s.BaseURL("none"), s.BaseURL("bridge"))
	}
	if again, err := s.Listen("127.0.0.1", "bridge"); err != nil || again != base {
		t.Errorf("second Listen on the same address: %q %v", again, err)
	}
	resp, err := http.Get(base + "/v4/tok/task")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"TaskARN":"arn:aws:ecs:us-east-1:1:task/default/abc"`) {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen("127.0.0.1"); err == nil {
		t.Error("Listen after Close succeeded")
	}
	if _, err := http.Get(base + "/v4/tok/task"); err == nil {
		t.Error("still serving after Close")
	}
}
