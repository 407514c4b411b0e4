package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	agentapi "github.com/ecsd/ecsd/api/agent"
)

// StateFile is the name of the file in the data dir that keeps the instance's
// identity across agent restarts.
const StateFile = "instance.json"

const registerTimeout = 15 * time.Second

// Error is a refusal from the server's agent endpoints.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server refused (%d %s): %s", e.Status, e.Code, e.Message)
}

// resumable: the stored identity is no longer valid; a fresh registration
// with the join token may succeed.
func (e *Error) resumable() bool {
	switch e.Code {
	case agentapi.ErrUnknownInstance, agentapi.ErrInactiveInstance, agentapi.ErrInvalidCredential:
		return true
	}
	return false
}

// permanent: retrying the same request cannot succeed without an operator.
func (e *Error) permanent() bool {
	switch e.Code {
	case agentapi.ErrInvalidJoinToken, agentapi.ErrRegistrationDisabled, agentapi.ErrBadRequest:
		return true
	}
	return false
}

// state is the state file's content.
type state struct {
	Server               string `json:"server"`
	Cluster              string `json:"cluster"`
	ContainerInstanceArn string `json:"containerInstanceArn"`
	Secret               string `json:"secret"`
	ClusterArn           string `json:"clusterArn"`
	// Kind is what sort of instance it registered as (kindOf): an agent
	// started as another kind registers anew rather than resume it.
	Kind string `json:"kind,omitempty"`
}

// kindOf names the sort of instance a registration asks to be: "" for an
// ordinary one, else fargate, external or node-group:<group>/<node>.
func kindOf(r *agentapi.RegisterRequest) string {
	switch {
	case r.Fargate:
		return "fargate"
	case r.External:
		return "external"
	case r.NodeGroup != "":
		return "node-group:" + r.NodeGroup + "/" + r.NodeID
	}
	return ""
}

func (s *Session) statePath() string { return filepath.Join(s.cfg.DataDir, StateFile) }

func (s *Session) loadState() (*state, bool) {
	b, err := os.ReadFile(s.statePath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("state file unreadable; registering anew", "path", s.statePath(), "err", err)
		}
		return nil, false
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.ContainerInstanceArn == "" || st.Secret == "" {
		s.log.Warn("state file malformed; registering anew", "path", s.statePath(), "err", err)
		return nil, false
	}
	return &st, true
}

// saveState writes the state file atomically, readable by its owner only (it
// holds the instance credential).
func (s *Session) saveState(st *state) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("session: data dir: %w", err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp, err := os.CreateTemp(s.cfg.DataDir, StateFile+".*")
	if err != nil {
		return fmt.Errorf("session: state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("session: state file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("session: state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("session: state file: %w", err)
	}
	return os.Rename(tmp.Name(), s.statePath())
}

// Register makes the session's identity valid on the server: it resumes the
// registration in the state file, or registers anew with the join token when
// there is none or the server no longer accepts it. Transient failures are
// retried with backoff until ctx ends; a refusal that needs an operator (bad
// join token, registration disabled) is returned as an *Error.
func (s *Session) Register(ctx context.Context) error {
	backoff := s.cfg.MinBackoff
	for {
		err := s.registerOnce(ctx)
		if err == nil {
			return nil
		}
		var ae *Error
		if errors.As(err, &ae) && ae.permanent() {
			s.log.Error("registration refused", "code", ae.Code, "message", ae.Message)
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := jitter(backoff)
		s.log.Warn("registration failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

func (s *Session) registerOnce(ctx context.Context) error {
	req := s.cfg.Registration
	req.Cluster = s.cfg.Cluster
	kind := kindOf(&req)
	if st, ok := s.loadState(); ok {
		if st.Kind != kind {
			s.log.Warn("stored registration is for another kind of instance; registering anew", "stored", st.Kind, "kind", kind)
		} else if st.Cluster == s.cfg.Cluster {
			resume := req
			resume.ContainerInstanceArn, resume.Secret = st.ContainerInstanceArn, st.Secret
			resp, err := s.post(ctx, &resume)
			if err == nil {
				s.log.Info("registration resumed", "instance", resp.ContainerInstanceArn)
				return s.adopt(resp)
			}
			var ae *Error
			if !errors.As(err, &ae) || !ae.resumable() {
				return err
			}
			s.log.Warn("stored registration no longer valid; registering anew", "instance", st.ContainerInstanceArn, "code", ae.Code, "message", ae.Message)
		} else {
			s.log.Warn("stored registration is for another cluster; registering anew", "stored", st.Cluster, "cluster", s.cfg.Cluster)
		}
	}
	req.JoinToken = s.cfg.JoinToken
	resp, err := s.post(ctx, &req)
	if err != nil {
		return err
	}
	s.log.Info("registered as a new container instance", "instance", resp.ContainerInstanceArn, "cluster", resp.ClusterArn)
	return s.adopt(resp)
}

func (s *Session) adopt(resp *agentapi.RegisterResponse) error {
	if err := s.saveState(&state{Server: s.cfg.ServerURL, Cluster: s.cfg.Cluster, ContainerInstanceArn: resp.ContainerInstanceArn,
		Secret: resp.Secret, ClusterArn: resp.ClusterArn, Kind: kindOf(&s.cfg.Registration)}); err != nil {
		return err
	}
	hb := resp.HeartbeatInterval
	if s.cfg.HeartbeatInterval > 0 {
		hb = s.cfg.HeartbeatInterval
	}
	if hb <= 0 {
		hb = 10 * time.Second
	}
	s.mu.Lock()
	s.id = identity{arn: resp.ContainerInstanceArn, secret: resp.Secret, clusterArn: resp.ClusterArn, heartbeat: hb}
	s.mu.Unlock()
	return nil
}

func (s *Session) post(ctx context.Context, req *agentapi.RegisterRequest) (*agentapi.RegisterResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.ServerURL+agentapi.RegisterPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.HTTPClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorFrom(resp.StatusCode, b)
	}
	var out agentapi.RegisterResponse
	if err := json.Unmarshal(b, &out); err != nil || out.ContainerInstanceArn == "" || out.Secret == "" {
		return nil, fmt.Errorf("session: malformed register response: %s", bytes.TrimSpace(b))
	}
	return &out, nil
}

// errorFrom decodes an agent endpoint's error body.
func errorFrom(status int, body []byte) *Error {
	var er agentapi.ErrorResponse
	if json.Unmarshal(body, &er) != nil || er.Code == "" {
		return &Error{Status: status, Code: agentapi.ErrServer, Message: string(bytes.TrimSpace(body))}
	}
	return &Error{Status: status, Code: er.Code, Message: er.Message}
}
