package apiserver

import (
	"context"
	"errors"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/resource"
)

// applyStateChange records an agent's report about one of its tasks. It is the
// one path by which task status moves after placement (the agent channel and
// SubmitTaskStateChange both call it). Stale or malformed reports are rejected
// with an error and change nothing.
func (s *Server) applyStateChange(ctx context.Context, scope resource.Scope, cluster, instanceID string, sc *agentapi.StateChange) error {
	return errors.New("applyStateChange: not implemented yet")
}
