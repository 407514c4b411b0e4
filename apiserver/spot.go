package apiserver

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
)

// SpotInterruptionPath is the operator endpoint that interrupts a
// FARGATE_SPOT task as the pool would when it needs the room back: the task
// gets SIGTERM at once and SIGKILL after the Spot warning, and stops with stop
// code SpotInterruption. Requests are signed like API calls.
const SpotInterruptionPath = "/ecsd/v1/spot-interruptions"

// spotInterruptionRequest names the task: an ARN, or an ID with its cluster.
type spotInterruptionRequest struct {
	Cluster string `json:"cluster"`
	Task    string `json:"task"`
}

func (s *Server) serveSpotInterruption(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", reqID)
	log := s.log.With("request_id", reqID, "op", "SpotInterruption")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.writeError(w, log, ecs.Errorf(ecs.CodeSerialization, "Could not read the request body: %v.", err))
		return
	}
	id, err := s.authenticate(r, body)
	if err != nil {
		s.writeError(w, log, err)
		return
	}
	var in spotInterruptionRequest
	if err := json.Unmarshal(body, &in); err != nil {
		s.writeError(w, log, ecs.Errorf(ecs.CodeSerialization, "The body must be {\"cluster\": ..., \"task\": ...}: %v.", err))
		return
	}
	c := &Call{ctx: r.Context(), Op: "SpotInterruption", Identity: id, RequestID: reqID, Now: s.cfg.Now().UTC(), s: s}
	out, err := s.interruptSpot(c, &in)
	if err != nil {
		s.writeError(w, log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"task": out})
}

func (s *Server) interruptSpot(c *Call, in *spotInterruptionRequest) (*ecs.Task, error) {
	if in.Task == "" {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "task: required (a task ARN, or an ID with cluster).")
	}
	ref := in.Cluster
	if a, err := resource.ParseARN(in.Task); ref == "" && err == nil && a.Type == "task" && len(a.Parts) == 2 {
		ref = a.Parts[0] // a long task ARN names its cluster
	}
	cluster, err := s.resolveCluster(c, ref, false)
	if err != nil {
		return nil, err
	}
	scope, name := c.Scope(), cluster.ClusterName
	id, ok := parseTaskRef(scope, name, in.Task)
	if !ok {
		return nil, errTaskNotFound()
	}
	var result *resource.Task
	_, _, err = s.plan.Update(c.ctx, func(snap *cache.Snapshot) ([]*resource.Task, error) {
		cur, _, ok := peekTask(snap, scope, name, id)
		if !ok {
			return nil, errTaskNotFound()
		}
		result = cur
		if cur.CapacityProviderName != resource.ProviderFargateSpot {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "task: %s does not run on FARGATE_SPOT (capacity provider %q); only Spot tasks can be interrupted.", cur.TaskArn, cur.CapacityProviderName)
		}
		next := Clone(cur)
		if !next.Interrupt(c.Now, s.cfg.SpotWarning) {
			return nil, nil // already stopping: the first stop stands
		}
		if taskInstanceHasNoAgent(snap, next) {
			taskFinishStop(next, c.Now)
		}
		result = next
		return []*resource.Task{next}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("spot task interrupted", "task", result.TaskArn, "warning", s.cfg.SpotWarning)
	v := taskView(result, true)
	return &v, nil
}
