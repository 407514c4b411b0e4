package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/coder/websocket"

	"github.com/ecsd/ecsd/agent/session"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

const (
	testToken = "join-me-please"
	testHB    = 200 * time.Millisecond
)

var testScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

// logWriter sends slog output to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("ECSD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: level}))
}

// server is a control plane with a join token and a short heartbeat.
type server struct {
	cp  *controlplane.ControlPlane
	ecs *awsecs.Client
	dir string
}

func startServer(t *testing.T, dir, listen string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{
		Listen: listen, DataDir: dir, Logger: testLogger(t).With("side", "server"),
		Auth: auth.Config{Mode: auth.Dev, DefaultAccount: testScope.Account, DefaultRegion: testScope.Region, MaxSkew: 15 * time.Minute},
		API:  apiserver.Config{DevMode: true, Version: "test", JoinToken: testToken, HeartbeatInterval: testHB},
	})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	s := &server{cp: cp, ecs: testenv.NewClient(cp.URL(), "AKIDTEST", "secret", testScope.Region), dir: dir}
	t.Cleanup(func() { cp.Close() })
	return s
}

// applier records what the session hands to the engine.
type applier struct {
	mu  sync.Mutex
	got []received
	ch  chan received
}

type received struct {
	at    time.Time
	tasks agentapi.Tasks
}

func newApplier() *applier { return &applier{ch: make(chan received, 1000)} }

func (a *applier) Apply(t agentapi.Tasks) {
	r := received{at: time.Now(), tasks: t}
	a.mu.Lock()
	a.got = append(a.got, r)
	a.mu.Unlock()
	a.ch <- r
}

// next waits for the next delivery matching fn.
func (a *applier) next(t *testing.T, what string, fn func(agentapi.Tasks) bool) received {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case r := <-a.ch:
			if fn(r.tasks) {
				return r
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func hasTask(ts agentapi.Tasks, arn string) (agentapi.TaskAssignment, bool) {
	for _, x := range ts.Tasks {
		if x.TaskArn == arn {
			return x, true
		}
	}
	return agentapi.TaskAssignment{}, false
}

func newSession(t *testing.T, url, dir, token string, a *applier) *session.Session {
	t.Helper()
	s, err := session.New(session.Config{
		ServerURL: url, Cluster: "", JoinToken: token, DataDir: dir, AgentVersion: "test",
		Registration: agentapi.RegisterRequest{
			Hostname:         "testhost",
			TotalResources:   []ecs.Resource{{Name: "CPU", Type: "INTEGER", IntegerValue: 2048}, {Name: "MEMORY", Type: "INTEGER", IntegerValue: 1024}},
			Attributes:       []ecs.Attribute{{Name: "ecs.capability.test"}},
			VersionInfo:      ecs.VersionInfo{AgentVersion: "test"},
			AvailabilityZone: "us-east-1b", InstanceType: "ecsd.test",
		},
		MaxBackoff: 300 * time.Millisecond,
		Logger:     testLogger(t).With("side", "agent"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if a != nil {
		s.SetApplier(a)
	}
	return s
}

// run runs the session until the test ends; the returned channel gets Run's
// result (once: the cleanup does not wait for a result the test consumed).
func run(t *testing.T, s *session.Session) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { defer close(finished); done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-finished })
	return cancel, done
}

func waitFor(t *testing.T, what string, timeout time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func idOf(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// putTask stores a task placed on the instance, as RunTask's planner would.
func putTask(t *testing.T, srv *server, instanceID, taskID, desired string) (string, time.Time) {
	t.Helper()
	key := testScope.TaskKey("default", taskID)
	arn := testScope.TaskARN("default", taskID)
	rec := &resource.Task{
		Task: ecs.Task{TaskArn: arn, ClusterArn: testScope.ClusterARN("default"), LastStatus: "PROVISIONING", DesiredStatus: desired,
			CreatedAt: ecs.NewTime(time.Now()), LaunchType: ecs.LaunchTypeEC2},
		Scope: testScope, Cluster: "default", ID: taskID, InstanceID: instanceID,
		Definition: ecs.TaskDefinition{Family: "web", Revision: 1},
	}
	op := store.Create(key, resource.Encode(rec))
	if e, ok := srv.cp.Cache.Snapshot().Get(key); ok {
		op = store.Update(key, resource.Encode(rec), e.Rev)
	}
	start := time.Now()
	rev, err := srv.cp.Store.Txn(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.cp.Cache.WaitFor(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	return arn, start
}

func describe(t *testing.T, srv *server, arn string) bool {
	t.Helper()
	out, err := srv.ecs.DescribeContainerInstances(context.Background(), &awsecs.DescribeContainerInstancesInput{ContainerInstances: []string{arn}})
	if err != nil || len(out.ContainerInstances) != 1 {
		t.Fatalf("describe %s: %+v %v", arn, out, err)
	}
	return out.ContainerInstances[0].AgentConnected
}

func TestSessionRegisterConnectPush(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	dir := t.TempDir()
	a := newApplier()
	s := newSession(t, srv.cp.URL(), dir, testToken, a)
	cancel, done := run(t, s)

	full := a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	if len(full.tasks.Tasks) != 0 {
		t.Fatalf("new instance got tasks: %+v", full.tasks)
	}
	arn := s.InstanceARN()
	if !strings.HasPrefix(arn, "arn:aws:ecs:us-east-1:123456789012:container-instance/default/") {
		t.Fatalf("instance arn %q", arn)
	}
	st, err := os.Stat(filepath.Join(dir, session.StateFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st, err)
	}
	waitFor(t, "agentConnected", 5*time.Second, func() bool { return describe(t, srv, arn) })
	out, _ := srv.ecs.DescribeContainerInstances(context.Background(), &awsecs.DescribeContainerInstancesInput{ContainerInstances: []string{arn}})
	ci := out.ContainerInstances[0]
	if aws.ToString(ci.VersionInfo.AgentVersion) != "test" || ci.RegisteredResources[0].IntegerValue != 2048 {
		t.Fatalf("registered %+v", ci)
	}

	// A task written for the instance is pushed within milliseconds of the commit.
	var lat []time.Duration
	for i := 0; i < 5; i++ {
		taskID := strings.Repeat(string(rune('a'+i)), 32)
		tarn, start := putTask(t, srv, idOf(arn), taskID, "RUNNING")
		r := a.next(t, "the task push", func(ts agentapi.Tasks) bool { _, ok := hasTask(ts, tarn); return ok && !ts.Full })
		lat = append(lat, r.at.Sub(start))
		got, _ := hasTask(r.tasks, tarn)
		if got.DesiredStatus != "RUNNING" || got.Definition.Family != "web" || got.Version == 0 || got.ClusterArn == "" {
			t.Fatalf("assignment %+v", got)
		}
	}
	t.Logf("commit → agent push latency: %v", lat)
	for _, l := range lat {
		if l > time.Second {
			t.Fatalf("push took %v", l)
		}
	}
	// RunTask places a task on the (only, connected) instance: it is pushed
	// as soon as it is committed.
	ctx := context.Background()
	if _, err := srv.ecs.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("push"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("busybox"), Memory: aws.Int32(64)}},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rt, err := srv.ecs.RunTask(ctx, &awsecs.RunTaskInput{TaskDefinition: aws.String("push")})
	if err != nil || len(rt.Tasks) != 1 {
		t.Fatalf("RunTask: %+v %v", rt, err)
	}
	runArn := aws.ToString(rt.Tasks[0].TaskArn)
	r := a.next(t, "the RunTask push", func(ts agentapi.Tasks) bool { _, ok := hasTask(ts, runArn); return ok })
	t.Logf("RunTask call → agent push: %v (RunTask returned after %v)", r.at.Sub(start), time.Since(start))

	// Desired status changes are pushed too.
	tarn, _ := putTask(t, srv, idOf(arn), strings.Repeat("a", 32), "STOPPED")
	a.next(t, "the stop push", func(ts agentapi.Tasks) bool { x, ok := hasTask(ts, tarn); return ok && x.DesiredStatus == "STOPPED" })

	// State changes are acknowledged (applied or, when the server rejects one, dropped).
	s.Report(agentapi.StateChange{TaskArn: tarn, Status: "PENDING"})
	s.Report(agentapi.StateChange{TaskArn: tarn, Status: "RUNNING"})
	waitFor(t, "acks", 5*time.Second, func() bool { return s.Unacked() == 0 })

	// Stopping the agent closes the connection: agentConnected goes false.
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, "agentConnected false after disconnect", 5*time.Second, func() bool { return !describe(t, srv, arn) })
}

func TestSessionServerRestart(t *testing.T) {
	serverDir := t.TempDir()
	srv := startServer(t, serverDir, "127.0.0.1:0")
	addr := srv.cp.Addr()
	a := newApplier()
	s := newSession(t, srv.cp.URL(), t.TempDir(), testToken, a)
	run(t, s)
	a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	arn := s.InstanceARN()
	tarn, _ := putTask(t, srv, idOf(arn), strings.Repeat("b", 32), "RUNNING")
	a.next(t, "the task push", func(ts agentapi.Tasks) bool { _, ok := hasTask(ts, tarn); return ok })

	// The server goes away; state changes reported meanwhile wait.
	srv.cp.Close()
	waitFor(t, "the session to notice", 5*time.Second, func() bool { return !s.Connected() })
	s.Report(agentapi.StateChange{TaskArn: tarn, Status: "PENDING"})
	s.Report(agentapi.StateChange{TaskArn: tarn, Status: "RUNNING"})
	if s.Unacked() != 2 {
		t.Fatalf("unacked %d", s.Unacked())
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects

	// A new server on the same data and port: the session resumes, gets the
	// full list again (with the task) and its changes are delivered.
	srv2 := startServer(t, serverDir, addr)
	r := a.next(t, "the full list after the restart", func(ts agentapi.Tasks) bool { return ts.Full })
	if _, ok := hasTask(r.tasks, tarn); !ok {
		t.Fatalf("full list after restart lacks %s: %+v", tarn, r.tasks)
	}
	waitFor(t, "resent changes acknowledged", 10*time.Second, func() bool { return s.Unacked() == 0 })
	dt, err := srv2.ecs.DescribeTasks(context.Background(), &awsecs.DescribeTasksInput{Tasks: []string{tarn}})
	if err != nil || len(dt.Tasks) != 1 || aws.ToString(dt.Tasks[0].LastStatus) != "RUNNING" {
		t.Fatalf("the changes reported while the server was down were not applied: %+v %v", dt, err)
	}
	if s.InstanceARN() != arn {
		t.Fatalf("instance changed across a server restart: %s → %s", arn, s.InstanceARN())
	}
	waitFor(t, "agentConnected", 5*time.Second, func() bool { return describe(t, srv2, arn) })
}

func TestSessionAgentRestart(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	dir := t.TempDir()
	a := newApplier()
	s1 := newSession(t, srv.cp.URL(), dir, testToken, a)
	cancel, done := run(t, s1)
	a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	arn := s1.InstanceARN()
	tarn, _ := putTask(t, srv, idOf(arn), strings.Repeat("c", 32), "RUNNING")
	cancel()
	<-done

	// A new agent process with the same data dir is the same instance, and
	// gets its task in the full list.
	a2 := newApplier()
	s2 := newSession(t, srv.cp.URL(), dir, "", a2) // no join token needed to resume
	run(t, s2)
	r := a2.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	if s2.InstanceARN() != arn {
		t.Fatalf("restarted agent registered as %s, want %s", s2.InstanceARN(), arn)
	}
	if _, ok := hasTask(r.tasks, tarn); !ok {
		t.Fatalf("full list lacks %s", tarn)
	}
	list, err := srv.ecs.ListContainerInstances(context.Background(), &awsecs.ListContainerInstancesInput{})
	if err != nil || len(list.ContainerInstanceArns) != 1 {
		t.Fatalf("instances after agent restart: %+v %v", list, err)
	}
}

// TestSessionReregisters: when the server no longer knows the instance
// (state wiped, or the instance deregistered), the agent joins anew.
func TestSessionReregisters(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	a := newApplier()
	s := newSession(t, srv.cp.URL(), t.TempDir(), testToken, a)
	_, done := run(t, s)
	a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	first := s.InstanceARN()

	if _, err := srv.ecs.DeregisterContainerInstance(context.Background(), &awsecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(first), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ni *session.NewInstanceError
		if !errors.Is(err, session.ErrNewInstance) || !errors.As(err, &ni) || ni.Forgotten || ni.Old != first {
			t.Fatalf("Run after deregistration: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("session did not notice the deregistration")
	}
	second := s.InstanceARN()
	if second == first || second == "" {
		t.Fatalf("re-registered as %q (was %q)", second, first)
	}

	// The dev reset wipes everything: the session registers again too.
	_, done = run(t, s)
	a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	resp, err := http.Post(srv.cp.URL()+"/ecsd/reset", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reset: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		var ni *session.NewInstanceError
		if !errors.As(err, &ni) || !ni.Forgotten || ni.Old != second {
			t.Fatalf("Run after reset: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("session did not notice the reset")
	}
	if s.InstanceARN() == second {
		t.Fatal("same ARN after reset")
	}
}

func postRegister(t *testing.T, url string, req agentapi.RegisterRequest) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(url+agentapi.RegisterPath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func wantAgentError(t *testing.T, status int, body []byte, wantStatus int, code string) {
	t.Helper()
	var er agentapi.ErrorResponse
	if err := json.Unmarshal(body, &er); err != nil || status != wantStatus || er.Code != code || er.Message == "" {
		t.Fatalf("got %d %s, want %d %s", status, body, wantStatus, code)
	}
}

func TestAgentChannelRefusals(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	url := srv.cp.URL()

	status, body := postRegister(t, url, agentapi.RegisterRequest{JoinToken: "wrong"})
	wantAgentError(t, status, body, 401, agentapi.ErrInvalidJoinToken)
	status, body = postRegister(t, url, agentapi.RegisterRequest{})
	wantAgentError(t, status, body, 401, agentapi.ErrInvalidJoinToken)
	status, body = postRegister(t, url, agentapi.RegisterRequest{JoinToken: testToken, Cluster: "missing"})
	wantAgentError(t, status, body, 404, agentapi.ErrClusterNotFound)
	status, body = postRegister(t, url, agentapi.RegisterRequest{JoinToken: testToken, Attributes: []ecs.Attribute{{Name: "bad name"}}})
	wantAgentError(t, status, body, 400, agentapi.ErrBadRequest)
	resp, err := http.Post(url+agentapi.RegisterPath, "application/json", strings.NewReader("{nope"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantAgentError(t, resp.StatusCode, b, 400, agentapi.ErrBadRequest)

	// A session with a wrong token gives up with the server's reason.
	s := newSession(t, url, t.TempDir(), "wrong", nil)
	err = s.Run(context.Background())
	var se *session.Error
	if !errors.As(err, &se) || se.Code != agentapi.ErrInvalidJoinToken {
		t.Fatalf("Run with a bad token: %v", err)
	}

	// Resuming with a wrong secret, or connecting without a credential.
	status, body = postRegister(t, url, agentapi.RegisterRequest{JoinToken: testToken})
	if status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	var reg agentapi.RegisterResponse
	json.Unmarshal(body, &reg)
	status, body = postRegister(t, url, agentapi.RegisterRequest{ContainerInstanceArn: reg.ContainerInstanceArn, Secret: "00"})
	wantAgentError(t, status, body, 401, agentapi.ErrInvalidCredential)
	status, body = postRegister(t, url, agentapi.RegisterRequest{ContainerInstanceArn: testScope.ContainerInstanceARN("default", "gone"), Secret: "00"})
	wantAgentError(t, status, body, 404, agentapi.ErrUnknownInstance)
	for _, h := range []string{"", "Bearer x", agentapi.AuthScheme + " " + reg.ContainerInstanceArn + ":bad"} {
		req, _ := http.NewRequest("GET", url+agentapi.ConnectPath, nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantAgentError(t, resp.StatusCode, b, 401, agentapi.ErrInvalidCredential)
	}
}

// dialRaw opens the agent websocket with a registered instance's credential.
func dialRaw(t *testing.T, url string, reg agentapi.RegisterResponse) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Authorization", agentapi.AuthScheme+" "+reg.ContainerInstanceArn+":"+reg.Secret)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(url, "http")+agentapi.ConnectPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func sendRaw(t *testing.T, ws *websocket.Conn, typ string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	data, _ := json.Marshal(agentapi.Envelope{Type: typ, Body: b})
	if err := ws.Write(context.Background(), websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
}

// readRaw returns the next message of type typ.
func readRaw(t *testing.T, ws *websocket.Conn, typ string, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var env agentapi.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			if err := json.Unmarshal(env.Body, into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestAgentChannelMalformedAndPresence(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	url := srv.cp.URL()
	status, body := postRegister(t, url, agentapi.RegisterRequest{JoinToken: testToken})
	if status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	var reg agentapi.RegisterResponse
	json.Unmarshal(body, &reg)
	if reg.HeartbeatInterval != testHB {
		t.Fatalf("heartbeat interval %v", reg.HeartbeatInterval)
	}
	tarn, _ := putTask(t, srv, idOf(reg.ContainerInstanceArn), strings.Repeat("d", 32), "RUNNING")
	taskKey := testScope.TaskKey("default", strings.Repeat("d", 32))
	before, _ := srv.cp.Cache.Snapshot().Get(taskKey)

	// Before connecting, an agent-registered instance is not connected.
	if describe(t, srv, reg.ContainerInstanceArn) {
		t.Fatal("connected before connecting")
	}

	// The first message must be a hello.
	ws := dialRaw(t, url, reg)
	sendRaw(t, ws, agentapi.TypeHeartbeat, agentapi.Heartbeat{})
	_, _, err := ws.Read(context.Background())
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("no hello: %v", err)
	}

	ws = dialRaw(t, url, reg)
	sendRaw(t, ws, agentapi.TypeHello, agentapi.Hello{AgentVersion: "raw"})
	var full agentapi.Tasks
	readRaw(t, ws, agentapi.TypeTasks, &full)
	if _, ok := hasTask(full, tarn); !ok || !full.Full {
		t.Fatalf("full list %+v", full)
	}
	// Malformed state changes are answered with an error and change nothing.
	for i, sc := range []agentapi.StateChange{
		{Seq: 0, TaskArn: tarn, Status: "RUNNING"},
		{Seq: 1, TaskArn: "", Status: "RUNNING"},
		{Seq: 2, TaskArn: tarn, Status: "FLYING"},
		{Seq: 3, TaskArn: testScope.TaskARN("other", strings.Repeat("d", 32)), Status: "RUNNING"},
	} {
		sendRaw(t, ws, agentapi.TypeStateChange, sc)
		var ack agentapi.Ack
		readRaw(t, ws, agentapi.TypeAck, &ack)
		if ack.Seq != sc.Seq || ack.Error == "" {
			t.Fatalf("case %d: ack %+v", i, ack)
		}
	}
	// Out of order: seq 3 was handled, 2 is stale.
	sendRaw(t, ws, agentapi.TypeStateChange, agentapi.StateChange{Seq: 2, TaskArn: tarn, Status: "RUNNING"})
	var ack agentapi.Ack
	readRaw(t, ws, agentapi.TypeAck, &ack)
	if ack.Seq != 2 || !strings.Contains(ack.Error, "out of order") {
		t.Fatalf("stale ack %+v", ack)
	}
	// A body that is not a state change at all.
	if err := ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"stateChange","body":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	readRaw(t, ws, agentapi.TypeAck, &ack)
	if !strings.Contains(ack.Error, "malformed") {
		t.Fatalf("malformed body ack %+v", ack)
	}
	after, _ := srv.cp.Cache.Snapshot().Get(taskKey)
	if after.Rev != before.Rev {
		t.Fatal("a rejected state change modified the task")
	}

	// Presence: connected while heartbeats flow, not connected once they stop
	// for three intervals, though the socket is still open.
	// (The server records at most two heartbeats per interval: wait past the
	// presence written on connect so this one is recorded.)
	time.Sleep(testHB)
	silent := time.Now()
	sendRaw(t, ws, agentapi.TypeHeartbeat, agentapi.Heartbeat{At: time.Now()})
	waitFor(t, "agentConnected", 5*time.Second, func() bool { return describe(t, srv, reg.ContainerInstanceArn) })
	waitFor(t, "agentConnected false after missed heartbeats", 5*time.Second, func() bool { return !describe(t, srv, reg.ContainerInstanceArn) })
	if d := time.Since(silent); d < 3*testHB-20*time.Millisecond {
		t.Fatalf("disconnected after only %v of silence", d)
	}
	t.Logf("agentConnected went false %v after the last heartbeat (heartbeat interval %v)", time.Since(silent).Round(time.Millisecond), testHB)

	// Garbage closes the connection with a policy violation.
	if err := ws.Write(context.Background(), websocket.MessageText, []byte("this is not json")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("garbage: %v", err)
			}
			break
		}
	}
	after, _ = srv.cp.Cache.Snapshot().Get(taskKey)
	if after.Rev != before.Rev {
		t.Fatal("the task changed")
	}

	// A second connection of the same instance replaces the first.
	ws1 := dialRaw(t, url, reg)
	sendRaw(t, ws1, agentapi.TypeHello, agentapi.Hello{})
	readRaw(t, ws1, agentapi.TypeTasks, &full)
	ws2 := dialRaw(t, url, reg)
	sendRaw(t, ws2, agentapi.TypeHello, agentapi.Hello{})
	readRaw(t, ws2, agentapi.TypeTasks, &full)
	_, _, err = ws1.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("replaced connection: %v", err)
	}
	sendRaw(t, ws2, agentapi.TypeHeartbeat, agentapi.Heartbeat{At: time.Now()})
	waitFor(t, "agentConnected on the new connection", 5*time.Second, func() bool { return describe(t, srv, reg.ContainerInstanceArn) })
}

// TestSessionKindChange: an agent restarted as another kind of instance (here
// a Fargate pool agent) registers anew instead of resuming the stored one; a
// restart as the same kind resumes.
func TestSessionKindChange(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	dir := t.TempDir()
	a := newApplier()
	s1 := newSession(t, srv.cp.URL(), dir, testToken, a)
	cancel, done := run(t, s1)
	a.next(t, "the full task list", func(ts agentapi.Tasks) bool { return ts.Full })
	first := s1.InstanceARN()
	cancel()
	<-done

	poolSession := func() *session.Session {
		s, err := session.New(session.Config{
			ServerURL: srv.cp.URL(), JoinToken: testToken, DataDir: dir, AgentVersion: "test",
			Registration: agentapi.RegisterRequest{Hostname: "pool", Fargate: true,
				TotalResources: []ecs.Resource{{Name: "CPU", Type: "INTEGER", IntegerValue: 4096}, {Name: "MEMORY", Type: "INTEGER", IntegerValue: 8192}}},
			MaxBackoff: 300 * time.Millisecond, Logger: testLogger(t).With("side", "pool"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s2 := poolSession()
	if err := s2.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	pool := s2.InstanceARN()
	if pool == first || !strings.Contains(pool, "container-instance/"+resource.FargatePool+"/") {
		t.Fatalf("pool agent registered as %s (was %s)", pool, first)
	}
	s3 := poolSession()
	if err := s3.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s3.InstanceARN() != pool {
		t.Fatalf("restarted pool agent registered as %s, want %s", s3.InstanceARN(), pool)
	}
}
