package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/auth"
)

// handler runs one operation on a raw request body.
type handler func(c *Call, body []byte) (any, error)

// op adapts a typed operation function: decode, validate the model's
// constraints, run.
func op[In any, Out any](fn func(*Call, *In) (*Out, error)) handler {
	return func(c *Call, body []byte) (any, error) {
		in := new(In)
		if err := decodeInput(body, in); err != nil {
			return nil, err
		}
		if v, ok := any(in).(ecs.Validatable); ok {
			if err := v.Validate(); err != nil {
				return nil, err
			}
		}
		out, err := fn(c, in)
		if err == nil && out == nil {
			out = new(Out)
		}
		return out, err
	}
}

// decodeInput decodes a JSON 1.1 request body. An empty body is an empty input.
func decodeInput(body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(in); err != nil {
		return serializationError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) { // only whitespace may follow (More misses a stray "}" or "]")
		return ecs.Errorf(ecs.CodeSerialization, "Unexpected data after the end of the JSON request body.")
	}
	return nil
}

func serializationError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "request body"
		}
		return ecs.Errorf(ecs.CodeSerialization, "%s: expected %s but found a JSON %s.", field, jsonKind(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return ecs.Errorf(ecs.CodeSerialization, "Malformed JSON at byte %d: %v.", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ecs.Errorf(ecs.CodeSerialization, "Malformed JSON: the request body ends too early.")
	default:
		return ecs.Errorf(ecs.CodeSerialization, "Malformed request body: %v.", err)
	}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a map"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.Contains(goType, "Time"):
		return "a timestamp"
	default:
		return "a structure"
	}
}

// Call is one API request in progress.
type Call struct {
	ctx       context.Context
	Op        string
	Identity  auth.Identity
	RequestID string
	// Now is the request's arrival time: every timestamp a call writes uses it.
	Now time.Time
	s   *Server
}

// Context returns the request's context.
func (c *Call) Context() context.Context { return c.ctx }

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", reqID)
	start := time.Now()
	target := r.Header.Get("X-Amz-Target")
	// ECS operations, and node group operations under their own prefix
	// (nodegroups.go); opKey is the operation's key in s.ops.
	opKey, opName, ok := splitTarget(target)
	log := s.log.With("request_id", reqID, "op", opName)
	if r.Method != http.MethodPost {
		s.writeError(w, log, ecs.Errorf(ecs.CodeUnknownOperation, "The ECS API accepts only POST requests; got %s %s.", r.Method, r.URL.Path))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, log, ecs.Errorf(ecs.CodeRequestEntityTooLarge, "The request body exceeds the limit of %d bytes.", s.cfg.MaxBodyBytes))
			return
		}
		s.writeError(w, log, ecs.Errorf(ecs.CodeSerialization, "Could not read the request body: %v.", err))
		return
	}
	id, err := s.authenticate(r, body)
	if err != nil {
		s.writeError(w, log, err)
		return
	}
	h, found := s.ops[opKey]
	if !ok || !found {
		s.writeError(w, log, ecs.Errorf(ecs.CodeUnknownOperation, "Unknown operation %q: X-Amz-Target must be %s.<Operation>.", target, ecs.TargetPrefix))
		return
	}
	c := &Call{ctx: r.Context(), Op: opName, Identity: id, RequestID: reqID, Now: s.cfg.Now().UTC(), s: s}
	out, err := s.run(c, h, body)
	if err != nil {
		s.writeError(w, log, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, log, fmt.Errorf("encode %s response: %w", opName, err))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	log.Debug("ok", "account", id.Account, "region", id.Region, "ms", time.Since(start).Milliseconds())
}

// run calls the handler, turning a panic into a server fault instead of a dropped
// connection (a client would retry a dropped connection for seconds).
func (s *Server) run(c *Call, h handler, body []byte) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s: %v", c.Op, p)
		}
	}()
	return h(c, body)
}

func (s *Server) authenticate(r *http.Request, body []byte) (auth.Identity, error) {
	if s.auth == nil {
		return auth.Identity{}, errors.New("apiserver: no authenticator configured")
	}
	return s.auth.Authenticate(r, body)
}

type wireError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// writeError is the one place errors become wire codes. *ecs.Error is the
// client's fault (400); anything else is a genuine server fault (500
// ServerException), logged with its cause.
func (s *Server) writeError(w http.ResponseWriter, log interface {
	Warn(string, ...any)
	Error(string, ...any)
	Info(string, ...any)
}, err error) {
	var e *ecs.Error
	status := http.StatusBadRequest
	if !errors.As(err, &e) {
		log.Error("server fault", "err", err)
		e = &ecs.Error{Code: ecs.CodeServer, Message: "The server encountered an internal error; the request can be retried."}
		status = http.StatusInternalServerError
	} else {
		log.Info("client error", "code", e.Code, "message", e.Message)
		if e.Code == ecs.CodeRequestEntityTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
	}
	b, _ := json.Marshal(wireError{Type: e.Code, Message: e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(status)
	w.Write(b)
}
