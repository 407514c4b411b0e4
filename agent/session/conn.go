package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	agentapi "github.com/ecsd/ecsd/api/agent"
)

const (
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	// readLimit bounds one message from the server (a full task list of many
	// tasks with large definitions).
	readLimit = 64 << 20
)

// connectOnce holds one websocket until it fails or ctx ends.
func (s *Session) connectOnce(ctx context.Context) error {
	s.mu.Lock()
	id := s.id
	lastAcked := s.lastAcked
	s.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	hdr := http.Header{}
	hdr.Set("Authorization", agentapi.AuthScheme+" "+id.arn+":"+id.secret)
	ws, resp, err := websocket.Dial(dctx, wsURL(s.cfg.ServerURL)+agentapi.ConnectPath, &websocket.DialOptions{HTTPClient: s.cfg.HTTPClient, HTTPHeader: hdr})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
			}
			return errorFrom(resp.StatusCode, body)
		}
		return fmt.Errorf("connect: %w", err)
	}
	ws.SetReadLimit(readLimit)
	defer ws.CloseNow()

	// The connection's own context ends only when the connection does: an
	// agent shutting down (ctx) closes it with a proper close frame instead.
	cctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
			ws.Close(websocket.StatusGoingAway, "agent shutting down")
		case <-cctx.Done():
		}
	}()
	send := func(typ string, body any) error {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		data, err := json.Marshal(agentapi.Envelope{Type: typ, Body: b})
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(cctx, writeTimeout)
		defer cancel()
		return ws.Write(wctx, websocket.MessageText, data)
	}
	if err := send(agentapi.TypeHello, agentapi.Hello{AgentVersion: s.cfg.AgentVersion, LastAcked: lastAcked}); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	s.setConnected(true)
	defer s.setConnected(false)
	s.log.Info("connected to server", "server", s.cfg.ServerURL, "instance", id.arn, "unacked", s.Unacked())

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	// A failing writer closes the socket, which ends the read loop.
	for _, loop := range []func() error{
		func() error { return s.sendLoop(cctx, send, lastAcked) },
		func() error { return s.heartbeatLoop(cctx, ws, send, id.heartbeat) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(); err != nil && cctx.Err() == nil {
				errc <- err
				ws.CloseNow()
			}
		}()
	}
	err = s.readLoop(cctx, ws)
	stop()
	wg.Wait()
	close(errc)
	if e, ok := <-errc; ok {
		err = e // the writer's failure is the cause; the read error is its echo
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Session) setConnected(v bool) {
	s.mu.Lock()
	s.connected = v
	s.mu.Unlock()
}

func wsURL(server string) string {
	if rest, ok := strings.CutPrefix(server, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(server, "http://")
}

// sendLoop sends every queued state change after sent, in order, then waits
// for more. After a reconnect it starts from the last acknowledged change, so
// nothing the server has not confirmed is lost.
func (s *Session) sendLoop(ctx context.Context, send func(string, any) error, sent uint64) error {
	for {
		for _, sc := range s.pendingAfter(sent) {
			if err := send(agentapi.TypeStateChange, sc); err != nil {
				return fmt.Errorf("send state change: %w", err)
			}
			sent = sc.Seq
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		}
	}
}

// heartbeatLoop sends a heartbeat every interval and pings, so a dead
// connection is noticed within one interval even when nothing else flows.
func (s *Session) heartbeatLoop(ctx context.Context, ws *websocket.Conn, send func(string, any) error, every time.Duration) error {
	if err := send(agentapi.TypeHeartbeat, agentapi.Heartbeat{At: time.Now().UTC()}); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := send(agentapi.TypeHeartbeat, agentapi.Heartbeat{At: time.Now().UTC()}); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		err := ws.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("server did not answer a ping within %s: %w", max(every, time.Second), err)
		}
	}
}

// readLoop handles the server's messages until the connection ends.
func (s *Session) readLoop(ctx context.Context, ws *websocket.Conn) error {
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				return fmt.Errorf("server closed the connection (%s)", st)
			}
			return err
		}
		var env agentapi.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			s.log.Warn("malformed message from server ignored", "err", err)
			continue
		}
		switch env.Type {
		case agentapi.TypeTasks:
			var t agentapi.Tasks
			if err := json.Unmarshal(env.Body, &t); err != nil {
				s.log.Warn("malformed task list from server ignored", "err", err)
				continue
			}
			s.log.Debug("tasks received", "full", t.Full, "count", len(t.Tasks))
			s.apply(t)
		case agentapi.TypeAck:
			var a agentapi.Ack
			if err := json.Unmarshal(env.Body, &a); err != nil {
				s.log.Warn("malformed ack from server ignored", "err", err)
				continue
			}
			s.ack(a)
		default:
			s.log.Warn("unknown message type from server ignored", "type", env.Type)
		}
	}
}
