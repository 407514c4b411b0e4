package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/scheduler"
)

// RunTask and StartTask. Both place through the planner: the plan function
// runs on a fresh snapshot, asks the scheduler where copies go and builds the
// task records; the planner charges each task's resources to its instance in
// the transaction that creates the tasks, compare-and-swapping every touched
// instance, so concurrent calls can never over-commit an instance. The
// transaction also checks that neither the cluster nor the task definition
// changed since the plan read them.

const (
	maxRunTaskCount       = 10
	maxStartTaskInstances = 10
	maxRunTaskClientToken = 64
	opRunTaskIdempotency  = "RunTask"
	taskCommitRounds      = 6
	taskReasonMissing     = "MISSING"
	taskMsgNoInstances    = "No Container Instances were found in your cluster."
)

// errTaskNothingPlaced ends a plan that placed no copy: there is nothing to write.
var errTaskNothingPlaced = errors.New("no task placed")

func (s *Server) runTask(c *Call, in *ecs.RunTaskRequest) (*ecs.RunTaskResponse, error) {
	count := 1
	if in.Count != nil {
		count = int(*in.Count)
	}
	if count < 1 || count > maxRunTaskCount {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "count: must be between 1 and %d; got %d.", maxRunTaskCount, count)
	}
	if err := validateClientToken("clientToken", in.ClientToken, maxRunTaskClientToken); err != nil {
		return nil, err
	}
	cluster, _, err := s.resolveClusterRev(c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	ls, err := resolveLaunchSpec(c.Snapshot(), c.Scope(), cluster, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	l, err := s.prepareLaunch(c, &taskLaunchRequest{
		taskDefinition: in.TaskDefinition, overrides: in.Overrides,
		group: in.Group, startedBy: in.StartedBy, referenceID: in.ReferenceId,
		tags: in.Tags, propagateTags: in.PropagateTags, enableManagedTags: in.EnableECSManagedTags,
		enableExecuteCommand: in.EnableExecuteCommand, networkConfiguration: in.NetworkConfiguration,
		volumeConfigurations: in.VolumeConfigurations, platformVersion: in.PlatformVersion,
	}, cluster, ls)
	if err != nil {
		return nil, err
	}
	l.spec.PlacementConstraints, l.spec.PlacementStrategy = in.PlacementConstraints, in.PlacementStrategy
	req := scheduler.Request{Task: l.need, Count: count, Group: l.spec.Group, Seed: taskPlacementSeed(c)}
	for _, ps := range in.PlacementStrategy {
		req.Strategies = append(req.Strategies, scheduler.Strategy{Type: string(ps.Type), Field: ps.Field})
	}
	req.Constraints = append(req.Constraints, l.defConstraints...)
	for _, pc := range in.PlacementConstraints {
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: string(pc.Type), Expression: pc.Expression})
	}
	if err := req.Validate(); err != nil {
		return nil, taskPlacementParamError(err)
	}

	// The token's fingerprint covers every parameter but the token.
	var key, hash string
	if in.ClientToken != "" {
		key = idempotencyKey(l.scope, opRunTaskIdempotency, l.cluster, in.ClientToken)
		probe := *in
		probe.ClientToken = ""
		hash = requestHash(&probe)
	}
	var resp *ecs.RunTaskResponse
	_, err = s.commitTasks(c, func(snap *cache.Snapshot) (planner.Plan, error) {
		resp = nil
		ops, err := l.checkStillRunnable(snap)
		if err != nil {
			return planner.Plan{}, err
		}
		var ent idempotencyEntry
		if key != "" {
			ent = lookupIdempotency(snap, key, c.Now)
			if ent.live {
				if ent.rec.Hash != hash {
					return planner.Plan{}, runTaskTokenConflict(in.ClientToken, ent.rec.Result)
				}
				return planner.Plan{}, &idempotentReplay{result: ent.rec.Result}
			}
		}
		sp := planner.PlaceSpread(snap, l.scope, l.cluster, ls.targets(nil, count), req, c.Now, 3*s.cfg.HeartbeatInterval)
		switch {
		case sp.FargateTargets && sp.FargateCandidates == 0:
			return planner.Plan{}, errNoFargatePool()
		case sp.Candidates == 0 && len(sp.Copies) == 0:
			return planner.Plan{}, ecs.Errorf(ecs.CodeInvalidParameter, taskMsgNoInstances)
		}
		out := &ecs.RunTaskResponse{Tasks: []ecs.Task{}, Failures: []ecs.Failure{}}
		if len(sp.Copies) < count {
			for _, p := range sp.Plans {
				out.Failures = append(out.Failures, taskPlacementFailures(p)...)
			}
		}
		var tasks []*resource.Task
		for _, pl := range sp.Copies {
			t := l.spec.New(c.Now, pl)
			tasks = append(tasks, t)
			out.Tasks = append(out.Tasks, taskView(t, true))
		}
		resp = out
		if len(tasks) == 0 {
			// Nothing to write, and nothing to remember: a retry may find room.
			return planner.Plan{}, errTaskNothingPlaced
		}
		if key != "" {
			b, err := json.Marshal(out)
			if err != nil {
				return planner.Plan{}, err
			}
			rec := &resource.Idempotency{Operation: opRunTaskIdempotency, Hash: hash, Result: b, CreatedAt: c.Now}
			ops = append(ops, idempotencyOp(key, rec, ent))
		}
		return planner.Plan{Tasks: tasks, Ops: ops}, nil
	})
	var replay *idempotentReplay
	switch {
	case errors.As(err, &replay):
		out := new(ecs.RunTaskResponse)
		if err := json.Unmarshal(replay.result, out); err != nil {
			return nil, fmt.Errorf("runTask: decode remembered response: %w", err)
		}
		return out, nil
	case errors.Is(err, errTaskNothingPlaced):
		return resp, nil
	case err != nil:
		return nil, err
	}
	return resp, nil
}

// runTaskTokenConflict is ECS's answer to a token reused with other
// parameters; it names the tasks the token already started.
func runTaskTokenConflict(token string, remembered []byte) error {
	var prev ecs.RunTaskResponse
	_ = json.Unmarshal(remembered, &prev)
	var arns []string
	for _, t := range prev.Tasks {
		arns = append(arns, t.TaskArn)
	}
	return ecs.Errorf(ecs.CodeConflict, "The clientToken %q is already in use with a different RunTask request; its tasks: [%s]. Retry with the original parameters or a new clientToken.", token, strings.Join(arns, ", "))
}

// commitTasks runs a placement plan through the planner. Heavy contention on
// the same instances can exhaust the planner's attempts; every round has a
// winner, so the call simply tries again a few times, with jitter.
func (s *Server) commitTasks(c *Call, fn planner.PlanFunc) (planner.Plan, error) {
	for round := 0; ; round++ {
		p, _, err := s.plan.Commit(c.ctx, fn)
		if !errors.Is(err, planner.ErrContended) || round == taskCommitRounds-1 {
			return p, err
		}
		select {
		case <-c.ctx.Done():
			return planner.Plan{}, c.ctx.Err()
		case <-time.After(time.Duration(rand.IntN(20)+1) * time.Millisecond):
		}
	}
}

func (s *Server) startTask(c *Call, in *ecs.StartTaskRequest) (*ecs.StartTaskResponse, error) {
	if n := len(in.ContainerInstances); n < 1 || n > maxStartTaskInstances {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "containerInstances: between 1 and %d container instances must be given; got %d.", maxStartTaskInstances, n)
	}
	cluster, _, err := s.resolveClusterRev(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	lr := &taskLaunchRequest{
		taskDefinition: in.TaskDefinition, overrides: in.Overrides,
		group: in.Group, startedBy: in.StartedBy, referenceID: in.ReferenceId,
		tags: in.Tags, propagateTags: in.PropagateTags, enableManagedTags: in.EnableECSManagedTags,
		enableExecuteCommand: in.EnableExecuteCommand, networkConfiguration: in.NetworkConfiguration,
		volumeConfigurations: in.VolumeConfigurations,
	}
	l, err := s.prepareLaunch(c, lr, cluster, launchSpec{launchType: ecs.LaunchTypeEC2})
	if err != nil {
		return nil, err
	}
	// An EXTERNAL instance runs the copy as an EXTERNAL task, if the definition
	// allows it.
	var lext *taskLaunch
	var extErr error
	if _, found := taskDefHasCompat(l.def, ecs.LaunchTypeEXTERNAL); found {
		ext := *l
		ext.launchType = ecs.LaunchTypeEXTERNAL
		lext = &ext
	} else {
		extErr = ecs.Errorf(ecs.CodeInvalidParameter, "Task definition does not support launch_type %s.", ecs.LaunchTypeEXTERNAL)
	}
	scope := c.Scope()
	type want struct {
		id, arn string
		n       int
	}
	var wants []*want
	var missing []ecs.Failure
	for _, ref := range in.ContainerInstances {
		id, ok := taskParseInstanceRef(scope, l.cluster, ref)
		if !ok {
			missing = append(missing, ecs.Failure{Arn: taskInstanceARNFor(scope, l.cluster, ref), Reason: taskReasonMissing})
			continue
		}
		found := false
		for _, w := range wants {
			if w.id == id {
				w.n++
				found = true
			}
		}
		if !found {
			wants = append(wants, &want{id: id, arn: taskInstanceARNFor(scope, l.cluster, ref), n: 1})
		}
	}
	var resp *ecs.StartTaskResponse
	_, err = s.commitTasks(c, func(snap *cache.Snapshot) (planner.Plan, error) {
		ops, err := l.checkStillRunnable(snap)
		if err != nil {
			return planner.Plan{}, err
		}
		views, byID := s.taskPlacementInstances(snap, l.scope, l.cluster, c, "")
		out := &ecs.StartTaskResponse{Tasks: []ecs.Task{}, Failures: append([]ecs.Failure{}, missing...)}
		var tasks []*resource.Task
		for _, w := range wants {
			ci, ok := byID[w.id]
			if !ok {
				out.Failures = append(out.Failures, ecs.Failure{Arn: w.arn, Reason: taskReasonMissing})
				continue
			}
			lw := l
			if ci.External {
				if lext == nil {
					out.Failures = append(out.Failures, ecs.Failure{Arn: ci.ContainerInstanceArn, Reason: extErr.(*ecs.Error).Message})
					continue
				}
				lw = lext
			}
			var view []scheduler.Instance
			for _, v := range views {
				if v.ID == w.id {
					view = append(view, v)
				}
			}
			p := scheduler.Place(view, scheduler.Request{Task: lw.need, Count: w.n, Group: lw.spec.Group, Seed: taskPlacementSeed(c)})
			for _, pl := range p.Placements {
				t := lw.spec.New(c.Now, planner.Placement{Target: planner.Target{LaunchType: lw.launchType}, Instance: byID[pl.InstanceID]})
				tasks = append(tasks, t)
				out.Tasks = append(out.Tasks, taskView(t, true))
			}
			for _, f := range taskPlacementFailures(p) {
				if f.Arn == "" {
					f.Arn = ci.ContainerInstanceArn
				}
				out.Failures = append(out.Failures, f)
			}
		}
		resp = out
		if len(tasks) == 0 {
			return planner.Plan{}, errTaskNothingPlaced
		}
		return planner.Plan{Tasks: tasks, Ops: ops}, nil
	})
	if err != nil && !errors.Is(err, errTaskNothingPlaced) {
		return nil, err
	}
	return resp, nil
}

func taskDefHasCompat(def *resource.TaskDefinition, lt ecs.LaunchType) (int, bool) {
	for i, c := range def.Compatibilities {
		if string(c) == string(lt) {
			return i, true
		}
	}
	return -1, false
}

// taskParseInstanceRef turns a container instance reference (an ID or an ARN of
// this cluster) into its ID.
func taskParseInstanceRef(scope resource.Scope, cluster, ref string) (string, bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, validTaskID(ref)
	}
	a, err := resource.ParseARN(ref)
	if err != nil || a.Type != "container-instance" || a.Scope != scope {
		return "", false
	}
	switch len(a.Parts) {
	case 1:
		return a.Parts[0], validTaskID(a.Parts[0])
	case 2:
		return a.Parts[1], a.Parts[0] == cluster && validTaskID(a.Parts[1])
	}
	return "", false
}

func taskInstanceARNFor(scope resource.Scope, cluster, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return scope.ContainerInstanceARN(cluster, ref)
}
