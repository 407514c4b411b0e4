package apiserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// The agent channel (api/agent): agents register with the join token (or
// resume with their instance credential) and hold one websocket each, over
// which the server pushes task assignments and receives state changes and
// heartbeats. The connection handling is in agentapi_conn.go.
//
//	POST /agent/v1/register ─▶ registerInstance (shared with RegisterContainerInstance)
//	GET  /agent/v1/connect  ─▶ agentConn: Hello ─▶ Tasks{Full} ─▶ pushes / acks / heartbeats
//	cache change of a task ─▶ agentHub.onChange ─▶ its instance's agentConn (signal, coalesced)

const (
	agentMaxRegisterBody = 1 << 20
	// agentReadLimit bounds one websocket message (a state change of a task
	// with many containers is a few KiB).
	agentReadLimit = 4 << 20
)

// agentHub holds the live agent connections of one Server, by instance key.
type agentHub struct {
	s   *Server
	ctx context.Context
	// cancel ends every connection (server shutdown).
	cancel context.CancelFunc

	mu           sync.Mutex
	conns        map[string]*agentConn
	closed       bool
	wg           sync.WaitGroup
	defaultScope resource.Scope
}

// newAgentHub creates the server's hub and subscribes it to the cache, so task
// changes reach the connected agents.
func newAgentHub(s *Server) *agentHub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &agentHub{s: s, ctx: ctx, cancel: cancel, conns: map[string]*agentConn{},
		defaultScope: resource.Scope{Account: auth.DefaultAccount, Region: auth.DefaultRegion}}
	s.cache.Subscribe(h.onChange)
	return h
}

// agents returns the server's hub.
func (s *Server) agents() *agentHub { return s.hub }

// SetAgentDefaultScope sets the account and region agents register in when
// they name their cluster by name (the server's default account and region).
func (s *Server) SetAgentDefaultScope(scope resource.Scope) {
	h := s.agents()
	h.mu.Lock()
	h.defaultScope = scope
	h.mu.Unlock()
}

// CloseAgents disconnects every agent (they reconnect to another server or
// when this one is back) and waits, up to timeout, for their connections to
// record the disconnect.
func (s *Server) CloseAgents(timeout time.Duration) {
	h := s.hub
	h.mu.Lock()
	h.closed = true
	conns := make([]*agentConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.kick(agentCloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("agent connections did not finish in time", "timeout", timeout)
	}
	h.cancel()
}

// registerAgentEndpoints mounts the agent protocol (api/agent) on mux.
func (s *Server) registerAgentEndpoints(mux *http.ServeMux) {
	h := s.agents()
	mux.HandleFunc("POST "+agentapi.RegisterPath, h.serveRegister)
	mux.HandleFunc("GET "+agentapi.ConnectPath, h.serveConnect)
}

// agentError is a failed agent call: an HTTP status and the protocol's code.
type agentError struct {
	status int
	code   string
	msg    string
}

func (e *agentError) Error() string { return e.code + ": " + e.msg }

func (h *agentHub) writeError(w http.ResponseWriter, err error) {
	var ae *agentError
	if !errors.As(err, &ae) {
		var ee *ecs.Error
		switch {
		case errors.As(err, &ee) && ee.Code == ecs.CodeClusterNotFound:
			ae = &agentError{http.StatusNotFound, agentapi.ErrClusterNotFound, ee.Message + " Create it first (aws ecs create-cluster); only the default cluster is created on demand."}
		case errors.As(err, &ee) && ee.Code == ecs.CodeClient:
			ae = &agentError{http.StatusGone, agentapi.ErrInactiveInstance, ee.Message}
		case errors.As(err, &ee):
			ae = &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, ee.Code + ": " + ee.Message}
		default:
			h.s.log.Error("agent call failed", "err", err)
			ae = &agentError{http.StatusInternalServerError, agentapi.ErrServer, "The server encountered an internal error; retry."}
		}
	}
	if ae.status >= 500 {
		h.s.log.Error("agent call failed", "code", ae.code, "message", ae.msg)
	} else {
		h.s.log.Warn("agent call refused", "code", ae.code, "message", ae.msg)
	}
	writeJSON(w, ae.status, agentapi.ErrorResponse{Code: ae.code, Message: ae.msg})
}

// ---- POST /agent/v1/register

func (h *agentHub) serveRegister(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, agentMaxRegisterBody))
	if err != nil {
		h.writeError(w, &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, "could not read the request body: " + err.Error()})
		return
	}
	var req agentapi.RegisterRequest
	if err := json.Unmarshal(body, &req); err != nil {
		h.writeError(w, &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, "the request body is not a register request: " + err.Error()})
		return
	}
	resp, err := h.register(r.Context(), &req)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *agentHub) register(ctx context.Context, req *agentapi.RegisterRequest) (*agentapi.RegisterResponse, error) {
	s := h.s
	if err := agentCheckKind(req); err != nil {
		return nil, err
	}
	reg := instanceRegistration{
		ClusterRef:  req.Cluster,
		Resources:   req.TotalResources,
		Attributes:  req.Attributes,
		VersionInfo: &req.VersionInfo,
		Tags:        req.Tags,
		Doc:         ciIdentityDocument{AvailabilityZone: req.AvailabilityZone, InstanceType: req.InstanceType},
		Hostname:    req.Hostname,
		Fargate:     req.Fargate,
		External:    req.External,
		NodeGroup:   req.NodeGroup,
		NodeID:      req.NodeID,
	}
	if req.Fargate {
		// A pool agent serves every cluster of its scope: --cluster only
		// chooses the scope (when it is an ARN).
		reg.ClusterRef = resource.FargatePool
	}
	secret := req.Secret
	var scope resource.Scope
	if req.ContainerInstanceArn != "" {
		// Resuming: the instance credential is the proof. What kind of instance
		// it is was fixed when it first registered.
		rec, err := h.authenticate(req.ContainerInstanceArn, req.Secret)
		if err != nil {
			return nil, err
		}
		scope = rec.Scope
		reg.ClusterRef = rec.Cluster
		reg.ARN = rec.ContainerInstanceArn
		reg.Fargate, reg.External, reg.NodeGroup, reg.NodeID = rec.Fargate, rec.External, rec.NodeGroup, rec.NodeID
	} else {
		if s.cfg.JoinToken == "" {
			return nil, &agentError{http.StatusForbidden, agentapi.ErrRegistrationDisabled, "this server admits no agents: it was started without a join token."}
		}
		if !agentTokenEqual(req.JoinToken, s.cfg.JoinToken) {
			return nil, &agentError{http.StatusUnauthorized, agentapi.ErrInvalidJoinToken, "the join token is missing or wrong."}
		}
		var err error
		if scope, err = h.registerScope(req); err != nil {
			return nil, err
		}
		secret = agentNewSecret()
		reg.SecretHash = agentHashSecret(secret)
	}
	c := &Call{ctx: ctx, Op: "AgentRegister", RequestID: uuid.NewString(), Now: s.cfg.Now().UTC(), s: s,
		Identity: auth.Identity{Account: scope.Account, Region: scope.Region, Service: "ecs"}}
	rec, _, err := s.registerInstance(c, reg)
	if err != nil {
		return nil, err
	}
	return &agentapi.RegisterResponse{
		ContainerInstanceArn: rec.ContainerInstanceArn,
		Secret:               secret,
		ClusterArn:           scope.ClusterARN(rec.Cluster),
		HeartbeatInterval:    s.cfg.HeartbeatInterval,
	}, nil
}

// agentCheckKind refuses a registration that asks to be two kinds of
// instance at once.
func agentCheckKind(req *agentapi.RegisterRequest) error {
	bad := func(msg string) error {
		return &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, msg}
	}
	switch {
	case req.Fargate && req.External:
		return bad("fargate and external are exclusive: a Fargate pool agent cannot be an external instance.")
	case req.Fargate && req.NodeGroup != "":
		return bad("fargate and nodeGroup are exclusive: the Fargate pool is not a node group.")
	case req.NodeID != "" && req.NodeGroup == "":
		return bad("nodeId needs nodeGroup: a node belongs to a node group.")
	case len(req.NodeGroup) > 255 || len(req.NodeID) > 255:
		return bad("nodeGroup and nodeId have at most 255 characters.")
	}
	return nil
}

// registerScope is where a new agent registers: the cluster ARN's account and
// region, else the request's, else the server's defaults.
func (h *agentHub) registerScope(req *agentapi.RegisterRequest) (resource.Scope, error) {
	h.mu.Lock()
	scope := h.defaultScope
	h.mu.Unlock()
	if req.Account != "" {
		scope.Account = req.Account
	}
	if req.Region != "" {
		scope.Region = req.Region
	}
	if strings.HasPrefix(req.Cluster, "arn:") {
		a, err := resource.ParseARN(req.Cluster)
		if err != nil || a.Type != "cluster" {
			return scope, &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, "cluster: " + req.Cluster + " is not a cluster name or ARN."}
		}
		scope = a.Scope
	}
	if len(scope.Account) != 12 || strings.Trim(scope.Account, "0123456789") != "" || scope.Region == "" {
		return scope, &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, "account must be 12 digits and region non-empty; got " + scope.String() + "."}
	}
	return scope, nil
}

// authenticate checks an instance credential and returns the instance.
func (h *agentHub) authenticate(arn, secret string) (*resource.ContainerInstance, error) {
	a, err := resource.ParseARN(arn)
	if err != nil || a.Type != "container-instance" || len(a.Parts) != 2 {
		return nil, &agentError{http.StatusBadRequest, agentapi.ErrBadRequest, "containerInstanceArn: " + arn + " is not a container instance ARN."}
	}
	rec, ok := Peek[resource.ContainerInstance](h.s.cache.Snapshot(), a.Scope.ContainerInstanceKey(a.Parts[0], a.Parts[1]))
	switch {
	case !ok:
		return nil, &agentError{http.StatusNotFound, agentapi.ErrUnknownInstance, "container instance " + arn + " does not exist; register again with the join token."}
	case rec.Status == resource.InstanceInactive:
		return nil, &agentError{http.StatusGone, agentapi.ErrInactiveInstance, "container instance " + arn + " was deregistered; register again with the join token."}
	case rec.SecretHash == "" || subtle.ConstantTimeCompare([]byte(agentHashSecret(secret)), []byte(rec.SecretHash)) != 1:
		return nil, &agentError{http.StatusUnauthorized, agentapi.ErrInvalidCredential, "the credential of container instance " + arn + " is wrong."}
	}
	return rec, nil
}

// agentTokenEqual compares join tokens in constant time (hashing first so the
// length does not leak either).
func agentTokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return got != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func agentNewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func agentHashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ---- pushes: cache changes to connections

// onChange runs on the cache's goroutine for every change: it only marks the
// affected connection and signals it (never blocks).
func (h *agentHub) onChange(ch cache.Change) {
	_, kind, _, ok := resource.SplitKey(ch.Key)
	if !ok {
		return
	}
	switch kind {
	case resource.KindTask:
		e := ch.New
		if e == nil {
			e = ch.Old
		}
		t, ok := e.Obj.(*resource.Task)
		if !ok || t.InstanceID == "" {
			return
		}
		if c := h.conn(t.InstanceKey()); c != nil {
			c.notify(ch.Key)
		}
	case resource.KindContainerInstance:
		gone := ch.New == nil
		if !gone {
			ci, ok := ch.New.Obj.(*resource.ContainerInstance)
			gone = ok && ci.Status == resource.InstanceInactive
		}
		if gone {
			if c := h.conn(ch.Key); c != nil {
				c.kick(agentClosePolicy, "container instance deregistered")
			}
		}
	}
}

func (h *agentHub) conn(instanceKey string) *agentConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[instanceKey]
}

// add makes c the instance's connection, replacing (and closing) an older one.
func (h *agentHub) add(c *agentConn) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	old := h.conns[c.key]
	h.conns[c.key] = c
	h.wg.Add(1)
	h.mu.Unlock()
	if old != nil {
		old.kick(agentClosePolicy, "replaced by a newer connection of the same instance")
	}
	return true
}

// remove drops c if it is still the instance's connection; it reports whether
// it was (only then may c record the disconnect).
func (h *agentHub) remove(c *agentConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.key] == c {
		delete(h.conns, c.key)
		return true
	}
	return false
}
