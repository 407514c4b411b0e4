package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// One agent's websocket: the Hello handshake, the full task list, pushes of
// changed tasks, and the read loop for state changes and heartbeats.

// Close codes the server uses.
const (
	agentClosePolicy    = websocket.StatusPolicyViolation
	agentCloseGoingAway = websocket.StatusGoingAway
	agentCloseTryLater  = websocket.StatusTryAgainLater
)

const (
	agentHelloTimeout = 10 * time.Second
	agentWriteTimeout = 10 * time.Second
	agentStoreTimeout = 5 * time.Second
)

type agentConn struct {
	h   *agentHub
	ws  *websocket.Conn
	key string // the instance's store key
	// Identity of the instance.
	scope   resource.Scope
	cluster string
	id      string
	arn     string
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	pending  map[string]struct{} // task keys changed since the last push
	signal   chan struct{}       // cap 1: "pending has something"
	kicked   bool
	lastSeq  uint64    // highest state change sequence handled on this connection
	lastPres time.Time // when presence was last written
}

// ---- GET /agent/v1/connect

func (h *agentHub) serveConnect(w http.ResponseWriter, r *http.Request) {
	arn, secret, ok := agentParseAuth(r.Header.Get("Authorization"))
	if !ok {
		h.writeError(w, &agentError{http.StatusUnauthorized, agentapi.ErrInvalidCredential, "Authorization must be \"" + agentapi.AuthScheme + " <container instance ARN>:<secret>\"."})
		return
	}
	rec, err := h.authenticate(arn, secret)
	if err != nil {
		h.writeError(w, err)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		h.s.log.Warn("agent websocket upgrade failed", "instance", arn, "err", err)
		return
	}
	ws.SetReadLimit(agentReadLimit)
	ctx, cancel := context.WithCancel(h.ctx)
	c := &agentConn{
		h: h, ws: ws, key: rec.Scope.ContainerInstanceKey(rec.Cluster, rec.ID),
		scope: rec.Scope, cluster: rec.Cluster, id: rec.ID, arn: rec.ContainerInstanceArn,
		log: h.s.log.With("channel", "agent", "instance", rec.ContainerInstanceArn),
		ctx: ctx, cancel: cancel, pending: map[string]struct{}{}, signal: make(chan struct{}, 1),
	}
	if !h.add(c) {
		cancel()
		ws.Close(agentCloseGoingAway, "server shutting down")
		return
	}
	defer h.wg.Done()
	c.run()
}

// agentParseAuth splits "ECSD-Instance <arn>:<secret>" (the ARN has colons of
// its own; the secret has none).
func agentParseAuth(v string) (arn, secret string, ok bool) {
	rest, ok := strings.CutPrefix(v, agentapi.AuthScheme+" ")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return strings.TrimSpace(rest[:i]), rest[i+1:], true
}

func (c *agentConn) run() {
	defer c.cancel()
	defer c.ws.CloseNow()
	start := time.Now()
	hello, err := c.readHello()
	if err != nil {
		c.log.Warn("agent connection refused", "err", err)
		c.ws.Close(agentClosePolicy, err.Error())
		c.finish()
		return
	}
	c.mu.Lock()
	c.lastSeq = hello.LastAcked
	c.mu.Unlock()
	c.log.Info("agent connected", "agent_version", hello.AgentVersion, "last_acked", hello.LastAcked)
	c.writePresence(true)

	done := make(chan struct{})
	go func() { defer close(done); c.pushLoop() }()
	err = c.readLoop()
	c.cancel()
	<-done
	c.finish()
	c.log.Info("agent disconnected", "after", time.Since(start).Round(time.Millisecond).String(), "reason", agentCloseReason(err))
}

// finish records the disconnect, unless a newer connection of the instance
// has taken over (it has written its own presence).
func (c *agentConn) finish() {
	if c.h.remove(c) {
		c.writePresence(false)
	}
}

func agentCloseReason(err error) string {
	if err == nil {
		return "closed"
	}
	if st := websocket.CloseStatus(err); st != -1 {
		return fmt.Sprintf("closed by agent (%s)", st)
	}
	return err.Error()
}

// kick closes the connection with code and reason, without blocking.
func (c *agentConn) kick(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.kicked {
		c.mu.Unlock()
		return
	}
	c.kicked = true
	c.mu.Unlock()
	c.log.Info("closing agent connection", "reason", reason)
	go func() {
		c.ws.Close(code, reason)
		c.cancel()
	}()
}

// notify marks a task key as changed and wakes the push loop (called from the
// cache goroutine: never blocks).
func (c *agentConn) notify(taskKey string) {
	c.mu.Lock()
	c.pending[taskKey] = struct{}{}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *agentConn) readHello() (*agentapi.Hello, error) {
	ctx, cancel := context.WithTimeout(c.ctx, agentHelloTimeout)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("no hello: %w", err)
	}
	var env agentapi.Envelope
	if err := json.Unmarshal(data, &env); err != nil || env.Type != agentapi.TypeHello {
		return nil, errors.New("the first message must be a hello")
	}
	var hello agentapi.Hello
	if len(env.Body) > 0 {
		if err := json.Unmarshal(env.Body, &hello); err != nil {
			return nil, fmt.Errorf("malformed hello: %v", err)
		}
	}
	return &hello, nil
}

// ---- server → agent

func (c *agentConn) send(typ string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	data, err := json.Marshal(agentapi.Envelope{Type: typ, Body: b})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, agentWriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// pushLoop sends the full task list, then every changed task as it changes.
// Pending changes are taken as a set, so a burst of changes becomes one
// message holding each task's latest state.
func (c *agentConn) pushLoop() {
	if err := c.send(agentapi.TypeTasks, c.fullTasks()); err != nil {
		c.log.Warn("sending the task list failed", "err", err)
		c.ws.CloseNow()
		return
	}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.signal:
		}
		c.mu.Lock()
		keys := c.pending
		c.pending = map[string]struct{}{}
		c.mu.Unlock()
		snap := c.h.s.cache.Snapshot()
		msg := agentapi.Tasks{Tasks: make([]agentapi.TaskAssignment, 0, len(keys))}
		for key := range keys {
			e, ok := snap.Get(key)
			if !ok {
				continue // collected: the agent has nothing left to do for it
			}
			if t, ok := e.Obj.(*resource.Task); ok && c.holds(t) {
				msg.Tasks = append(msg.Tasks, taskAssignment(e, t))
			}
		}
		if len(msg.Tasks) == 0 {
			continue
		}
		if err := c.send(agentapi.TypeTasks, msg); err != nil {
			c.log.Warn("pushing tasks failed", "err", err)
			c.ws.CloseNow()
			return
		}
		c.log.Debug("tasks pushed", "count", len(msg.Tasks))
	}
}

// pool reports whether the connection is a Fargate pool agent's: it serves
// the tasks of every cluster in its scope.
func (c *agentConn) pool() bool { return c.cluster == resource.FargatePool }

// holds reports whether t is placed on this connection's instance.
func (c *agentConn) holds(t *resource.Task) bool {
	return t.InstanceID == c.id && t.InstanceKey() == c.key
}

// fullTasks is every task assigned to the instance that is not STOPPED with
// its resources given back: what the agent must be running or stopping.
func (c *agentConn) fullTasks() agentapi.Tasks {
	snap := c.h.s.cache.Snapshot()
	out := agentapi.Tasks{Full: true, Tasks: []agentapi.TaskAssignment{}}
	prefix := c.scope.KindPrefix(resource.KindTask, c.cluster)
	if c.pool() {
		prefix = c.scope.KindPrefix(resource.KindTask)
	}
	snap.Walk(prefix, func(e *cache.Entry) bool {
		t, ok := e.Obj.(*resource.Task)
		if ok && c.holds(t) && !(t.LastStatus == "STOPPED" && t.Released) {
			out.Tasks = append(out.Tasks, taskAssignment(e, t))
		}
		return true
	})
	return out
}

// taskAssignment is a task's desired state as the agent gets it.
func taskAssignment(e *cache.Entry, t *resource.Task) agentapi.TaskAssignment {
	a := agentapi.TaskAssignment{
		TaskArn:              t.TaskArn,
		ClusterArn:           t.ClusterArn,
		DesiredStatus:        t.DesiredStatus,
		Definition:           t.Definition,
		Overrides:            t.Overrides,
		Group:                t.Group,
		StartedBy:            t.StartedBy,
		LaunchType:           string(t.LaunchType),
		Tags:                 t.Tags,
		AZ:                   t.AvailabilityZone,
		StopCode:             string(t.StopCode),
		StoppedReason:        t.StoppedReason,
		ServiceName:          t.ServiceName,
		PlatformFamily:       t.PlatformFamily,
		Cpu:                  t.Cpu,
		Memory:               t.Memory,
		Containers:           t.Containers,
		Attachments:          t.Attachments,
		EnableExecuteCommand: t.EnableExecuteCommand,
		StopTimeout:          t.StopTimeout,
		CapacityProviderName: t.CapacityProviderName,
		PlatformVersion:      t.PlatformVersion,
		Version:              e.Rev,
	}
	if t.CreatedAt != nil {
		a.CreatedAt = t.CreatedAt.Time
	}
	return a
}

// ---- agent → server

// readLoop handles messages until the connection ends. An agent silent for
// three heartbeat intervals is taken as gone.
func (c *agentConn) readLoop() error {
	timeout := 3*c.h.s.cfg.HeartbeatInterval + 5*time.Second
	for {
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		typ, data, err := c.ws.Read(ctx)
		cancel()
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			c.log.Warn("malformed agent message: not text; closing")
			c.ws.Close(agentClosePolicy, "messages must be JSON text")
			return errors.New("binary message")
		}
		var env agentapi.Envelope
		if err := json.Unmarshal(data, &env); err != nil || env.Type == "" {
			c.log.Warn("malformed agent message: not an envelope; closing", "err", err, "bytes", len(data))
			c.ws.Close(agentClosePolicy, "malformed message: want {\"type\": ..., \"body\": ...}")
			return errors.New("malformed envelope")
		}
		switch env.Type {
		case agentapi.TypeStateChange:
			if err := c.handleStateChange(env.Body); err != nil {
				return err
			}
		case agentapi.TypeHeartbeat:
			c.heartbeat()
		case agentapi.TypeHello:
			c.log.Warn("repeated hello ignored")
		default:
			c.log.Warn("unknown agent message type ignored", "type", env.Type)
		}
	}
}

// handleStateChange applies one state change and acknowledges it. A change
// that is malformed, out of order or rejected is acknowledged with the reason
// (the agent drops it; nothing changed). A server fault is not acknowledged:
// the connection is closed so the agent resends after reconnecting.
func (c *agentConn) handleStateChange(body json.RawMessage) error {
	var sc agentapi.StateChange
	if err := json.Unmarshal(body, &sc); err != nil {
		c.log.Warn("malformed state change rejected", "err", err)
		return c.send(agentapi.TypeAck, agentapi.Ack{Seq: sc.Seq, Error: "malformed state change: " + err.Error()})
	}
	reject := func(reason string) error {
		c.log.Warn("state change rejected", "seq", sc.Seq, "task", sc.TaskArn, "status", sc.Status, "reason", reason)
		return c.send(agentapi.TypeAck, agentapi.Ack{Seq: sc.Seq, Error: reason})
	}
	if sc.Seq == 0 {
		return reject("malformed state change: seq is required")
	}
	c.mu.Lock()
	last := c.lastSeq
	if sc.Seq > last {
		// Whatever becomes of this change, it is answered now: a repeat is stale.
		// (A server fault closes the connection; the next one starts from Hello.)
		c.lastSeq = sc.Seq
	}
	c.mu.Unlock()
	switch {
	case sc.Seq <= last:
		return reject(fmt.Sprintf("out of order: seq %d is not after %d", sc.Seq, last))
	case sc.TaskArn == "":
		return reject("malformed state change: taskArn is required")
	case resource.TaskStatusRank(sc.Status) < 0:
		return reject(fmt.Sprintf("malformed state change: status %q is not a task status", sc.Status))
	}
	// A pool agent reports tasks of any cluster of its scope (the ARN names
	// the task's cluster); applyStateChange checks the task is placed on it.
	a, err := resource.ParseARN(sc.TaskArn)
	if err != nil || a.Type != "task" || a.Scope != c.scope || len(a.Parts) != 2 || a.Parts[0] == "" || (!c.pool() && a.Parts[0] != c.cluster) {
		return reject("task " + sc.TaskArn + " is not in this instance's cluster")
	}
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	err = c.h.s.applyStateChange(ctx, c.scope, a.Parts[0], c.key, &sc)
	cancel()
	if err != nil && agentFault(err) {
		c.log.Error("state change could not be applied; closing so the agent resends", "seq", sc.Seq, "task", sc.TaskArn, "err", err)
		c.ws.Close(agentCloseTryLater, "state change could not be applied; reconnect and resend")
		return err
	}
	if errors.Is(err, errStaleStateChange) {
		// Older than what the server has (typically a resend after a lost ack):
		// harmless, so acknowledged without an error.
		c.log.Debug("stale state change acknowledged", "seq", sc.Seq, "task", sc.TaskArn, "status", sc.Status, "reason", err)
		return c.send(agentapi.TypeAck, agentapi.Ack{Seq: sc.Seq})
	}
	if err != nil {
		return reject(agentRejectReason(err))
	}
	c.log.Debug("state change applied", "seq", sc.Seq, "task", sc.TaskArn, "status", sc.Status)
	return c.send(agentapi.TypeAck, agentapi.Ack{Seq: sc.Seq})
}

// agentFault tells a server-side failure (retry later) from a rejection of the
// change itself.
func agentFault(err error) bool {
	var ee *ecs.Error
	if errors.As(err, &ee) {
		return ee.Code == ecs.CodeServer || ee.Code == ecs.CodeUpdateInProgress
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, planner.ErrContended) || errors.Is(err, store.ErrConflict)
}

func agentRejectReason(err error) string {
	var ee *ecs.Error
	if errors.As(err, &ee) {
		return ee.Message
	}
	return err.Error()
}

// heartbeat refreshes the presence record, at most twice per interval.
func (c *agentConn) heartbeat() {
	c.mu.Lock()
	due := time.Since(c.lastPres) >= c.h.s.cfg.HeartbeatInterval/2
	c.mu.Unlock()
	if due {
		c.writePresence(true)
	}
}

func (c *agentConn) writePresence(connected bool) {
	now := c.h.s.cfg.Now().UTC()
	p := resource.Presence{LastHeartbeat: now, Connected: connected}
	key := c.scope.PresenceKey(c.cluster, c.id)
	if _, ok := c.h.s.cache.Snapshot().Get(c.key); !ok {
		return // the instance is gone (state wiped): leave no presence behind
	}
	if !connected {
		if cur, ok := Peek[resource.Presence](c.h.s.cache.Snapshot(), key); ok {
			p.LastHeartbeat = cur.LastHeartbeat
		}
	}
	// The connection's context may be ending (disconnect): the write must still happen.
	ctx, cancel := context.WithTimeout(context.Background(), agentStoreTimeout)
	defer cancel()
	if _, err := c.h.s.st.Txn(ctx, store.Put(key, resource.Encode(&p))); err != nil {
		c.log.Warn("presence not recorded", "connected", connected, "err", err)
		return
	}
	c.mu.Lock()
	c.lastPres = time.Now()
	c.mu.Unlock()
}
