package resource

import (
	"fmt"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// Service statuses, deployment statuses and limits as ECS reports them.
const (
	ServiceActive   = "ACTIVE"
	ServiceDraining = "DRAINING"
	ServiceInactive = "INACTIVE"

	DeploymentPrimary  = "PRIMARY"
	DeploymentActive   = "ACTIVE"
	DeploymentInactive = "INACTIVE"

	// MaxServiceEvents is how many events a service keeps (newest first), as ECS.
	MaxServiceEvents = 100
	// MaxServiceHistory bounds the service deployments and service revisions a
	// service keeps for ListServiceDeployments / DescribeServiceRevisions. ECS
	// keeps them for 90 days; a bounded list keeps the record small.
	MaxServiceHistory = 50
)

// ServiceKey is the key of a service record.
func (s Scope) ServiceKey(cluster, name string) string { return s.Key(KindService, cluster, name) }

// ServiceDeploymentARN names one service deployment:
// service-deployment/<cluster>/<service>/<id>.
func (s Scope) ServiceDeploymentARN(cluster, service, id string) string {
	return s.arn("service-deployment/" + cluster + "/" + service + "/" + id)
}

// ServiceRevisionARN names one service revision:
// service-revision/<cluster>/<service>/<number>.
func (s Scope) ServiceRevisionARN(cluster, service, id string) string {
	return s.arn("service-revision/" + cluster + "/" + service + "/" + id)
}

// Service is a stored service.
//
// Two writers share the record: the API server (the spec: create, update,
// delete, tags) and the service controller on the leader (rollout state,
// events, history). The controller writes only when something changes
// (a rollout state, an event, a counted failure), never per task, so
// compare-and-swap conflicts between the two are rare; the controller merges
// its change into the fresh record when they happen. Running and pending
// counts are not stored: they are derived from the tasks (by deployment id)
// on every read, so they are exact and cost no writes.
//
// The embedded wire shape holds the spec and the events (newest first, at
// most MaxServiceEvents); its Deployments, RunningCount and PendingCount are
// always empty in the store.
type Service struct {
	ecs.Service
	Scope   Scope  `json:"scope"`
	Cluster string `json:"cluster"`
	// Rollouts are the service's deployments with their controller state,
	// newest first; the PRIMARY is always Rollouts[0].
	Rollouts []Deployment `json:"rollouts,omitempty"`
	// History is the service deployments (newest first) and Revisions the
	// service revisions (newest first), both bounded by MaxServiceHistory.
	History   []ServiceDeploymentRecord `json:"history,omitempty"`
	Revisions []ServiceRevisionRecord   `json:"revisions,omitempty"`
	// Throttle slows down launches after tasks repeatedly fail to start.
	Throttle Throttle `json:"throttle,omitzero"`
	// Steady is set while the service is at its steady state (one deployment,
	// every task running and healthy), so "has reached a steady state" is
	// written once per arrival.
	Steady bool `json:"steady,omitempty"`
	// Generation counts API writes that change what should run; the
	// controller uses it to tell a stale decision from a fresh one.
	Generation int64 `json:"generation"`
	// ClientToken and RequestHash make CreateService idempotent.
	ClientToken string `json:"clientToken,omitempty"`
	RequestHash string `json:"requestHash,omitempty"`
	// DeletedAt is set when DeleteService moved the service to DRAINING.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
	// InactiveAt is set when the last task stopped after a delete; the record
	// stays describable as INACTIVE and is collected later.
	InactiveAt *time.Time `json:"inactiveAt,omitempty"`
}

// Deployment is one of a service's deployments: the wire shape (its counts
// derived on read) and what the controller keeps about it.
type Deployment struct {
	ecs.Deployment
	PlacementConstraints []ecs.PlacementConstraint `json:"placementConstraints,omitempty"`
	PlacementStrategy    []ecs.PlacementStrategy   `json:"placementStrategy,omitempty"`
	ServiceDeploymentArn string                    `json:"serviceDeploymentArn,omitempty"`
	ServiceRevisionArn   string                    `json:"serviceRevisionArn,omitempty"`
	// Stage2 is set once a task of the deployment has become healthy: the
	// circuit breaker's first stage (tasks that never reach RUNNING) is over
	// and it counts health-check failures instead.
	Stage2         bool  `json:"stage2,omitempty"`
	HealthFailures int32 `json:"healthFailures,omitempty"`
	// Counted holds the ids of the deployment's failed tasks already counted
	// (into FailedTasks, HealthFailures or the throttle), so a failure is
	// counted once however often the controller looks. Ids of tasks no longer
	// stored are dropped.
	Counted []string `json:"counted,omitempty"`
	// RollbackOf is the id of the failed deployment this one rolls back.
	RollbackOf string `json:"rollbackOf,omitempty"`
}

// ServiceDeploymentRecord is one service deployment as ListServiceDeployments
// and DescribeServiceDeployments show it, with the deployment it tracks.
type ServiceDeploymentRecord struct {
	ecs.ServiceDeployment
	DeploymentID string `json:"deploymentId"`
}

// ServiceRevisionRecord is one service revision with the placement it was
// deployed with (which the wire shape does not carry but a rollback restores).
type ServiceRevisionRecord struct {
	ecs.ServiceRevision
	PlacementConstraints []ecs.PlacementConstraint `json:"placementConstraints,omitempty"`
	PlacementStrategy    []ecs.PlacementStrategy   `json:"placementStrategy,omitempty"`
}

// Throttle is the restart backoff of a service whose tasks keep failing to
// start.
type Throttle struct {
	// Failures counts consecutive tasks that stopped before RUNNING.
	Failures int32 `json:"failures,omitempty"`
	// LastFailure is when the last of them was counted; NotBefore is the
	// earliest time the next task may be launched.
	LastFailure *time.Time `json:"lastFailure,omitempty"`
	NotBefore   *time.Time `json:"notBefore,omitempty"`
}

// Primary returns the PRIMARY deployment, or nil.
func (s *Service) Primary() *Deployment {
	for i := range s.Rollouts {
		if s.Rollouts[i].Status == DeploymentPrimary {
			return &s.Rollouts[i]
		}
	}
	return nil
}

// Rollout returns the deployment with id, or nil.
func (s *Service) Rollout(id string) *Deployment {
	for i := range s.Rollouts {
		if s.Rollouts[i].Id == id {
			return &s.Rollouts[i]
		}
	}
	return nil
}

// HistoryRecord returns the service deployment record with arn, or nil.
func (s *Service) HistoryRecord(arn string) *ServiceDeploymentRecord {
	for i := range s.History {
		if s.History[i].ServiceDeploymentArn == arn {
			return &s.History[i]
		}
	}
	return nil
}

// Revision returns the service revision record with arn, or nil.
func (s *Service) Revision(arn string) *ServiceRevisionRecord {
	for i := range s.Revisions {
		if s.Revisions[i].ServiceRevisionArn == arn {
			return &s.Revisions[i]
		}
	}
	return nil
}

// AddEvent puts an event first, keeping at most MaxServiceEvents.
func (s *Service) AddEvent(e ecs.ServiceEvent) {
	s.Events = append([]ecs.ServiceEvent{e}, s.Events...)
	if len(s.Events) > MaxServiceEvents {
		s.Events = s.Events[:MaxServiceEvents]
	}
}

func (s *Service) ClusterName() string { return s.Cluster }

func (s *Service) CountsAs() (Count, ecs.LaunchType) {
	lt := s.LaunchType
	// A service on a strategy counts as what its providers launch.
	if lt == "" && len(s.CapacityProviderStrategy) > 0 && IsFargateProvider(s.CapacityProviderStrategy[0].CapacityProvider) {
		lt = ecs.LaunchTypeFARGATE
	}
	switch s.Status {
	case ServiceActive:
		return CountActiveService, lt
	case ServiceDraining:
		return CountDrainingService, lt
	}
	return CountNone, lt
}

func (s *Service) GetTags() []ecs.Tag  { return s.Tags }
func (s *Service) SetTags(t []ecs.Tag) { s.Tags = t }

var (
	_ ClusterMember = (*Service)(nil)
	_ Taggable      = (*Service)(nil)
)

func init() {
	RegisterKind(KindService, func() any { return new(Service) })
	// Long format only: service/<cluster>/<name>.
	RegisterARNType("service", func(a ARN) (string, bool) {
		if len(a.Parts) != 2 || a.Parts[0] == "" || a.Parts[1] == "" {
			return "", false
		}
		return a.Scope.ServiceKey(a.Parts[0], a.Parts[1]), true
	})
}

// StartDeployment makes dep the PRIMARY deployment (the previous PRIMARY
// becomes ACTIVE and is drained by the controller) and records its service
// deployment and revision. A new deployment resets the restart throttle, as
// ECS does. The caller fills dep's identity, task definition and
// configuration; rec and rev may be nil.
func (s *Service) StartDeployment(dep Deployment, rec *ServiceDeploymentRecord, rev *ServiceRevisionRecord) {
	for i := range s.Rollouts {
		if s.Rollouts[i].Status == DeploymentPrimary {
			s.Rollouts[i].Status = DeploymentActive
			if h := s.HistoryRecord(s.Rollouts[i].ServiceDeploymentArn); h != nil && h.Status == ecs.ServiceDeploymentStatusINPROGRESS {
				// Superseded before it finished.
				h.Status = ecs.ServiceDeploymentStatusSTOPPED
				h.StatusReason = "Superseded by a newer service deployment."
				h.StoppedAt = dep.CreatedAt
				h.UpdatedAt = dep.CreatedAt
			}
		}
	}
	dep.Status = DeploymentPrimary
	s.Rollouts = append([]Deployment{dep}, s.Rollouts...)
	if rec != nil {
		s.History = append([]ServiceDeploymentRecord{*rec}, s.History...)
		if len(s.History) > MaxServiceHistory {
			s.History = s.History[:MaxServiceHistory]
		}
	}
	if rev != nil {
		s.Revisions = append([]ServiceRevisionRecord{*rev}, s.Revisions...)
		if len(s.Revisions) > MaxServiceHistory {
			s.Revisions = s.Revisions[:MaxServiceHistory]
		}
	}
	s.Throttle = Throttle{}
	s.Steady = false
}

// RollBack makes the most recent COMPLETED deployment PRIMARY again after the
// deployment failedID failed (the circuit breaker, or StopServiceDeployment
// with ROLLBACK): one still in the service if there is one, else one rebuilt
// from the revision of the last successful service deployment. The service's
// spec follows the restored deployment. It returns the new PRIMARY, or nil
// when nothing ever completed (the failed deployment then stays PRIMARY).
func (s *Service) RollBack(failedID, reason string, now time.Time) *Deployment {
	target := s.rollbackTarget(failedID, now)
	if target == nil {
		return nil
	}
	target.Status = DeploymentPrimary
	target.RolloutState = ecs.DeploymentRolloutStateINPROGRESS
	target.RolloutStateReason = reason
	target.UpdatedAt = ecs.NewTime(now)
	target.RollbackOf = failedID
	target.Stage2, target.FailedTasks, target.HealthFailures = false, 0, 0
	id := target.Id
	if f := s.Rollout(failedID); f != nil {
		f.Status = DeploymentActive
	}
	// The restored deployment moves to the front.
	for i := range s.Rollouts {
		if s.Rollouts[i].Id == id && i > 0 {
			d := s.Rollouts[i]
			copy(s.Rollouts[1:i+1], s.Rollouts[:i])
			s.Rollouts[0] = d
			break
		}
	}
	p := &s.Rollouts[0]
	s.TaskDefinition = p.TaskDefinition
	s.LaunchType = p.LaunchType
	s.CapacityProviderStrategy = p.CapacityProviderStrategy
	s.NetworkConfiguration = p.NetworkConfiguration
	s.PlacementConstraints = p.PlacementConstraints
	s.PlacementStrategy = p.PlacementStrategy
	s.Throttle = Throttle{}
	s.Steady = false
	return p
}

func (s *Service) rollbackTarget(failedID string, now time.Time) *Deployment {
	for i := range s.Rollouts {
		r := &s.Rollouts[i]
		if r.Id != failedID && r.RolloutState == ecs.DeploymentRolloutStateCOMPLETED {
			return r
		}
	}
	for _, h := range s.History {
		if h.DeploymentID == failedID {
			continue
		}
		arn := ""
		switch {
		case h.Status == ecs.ServiceDeploymentStatusSUCCESSFUL && h.TargetServiceRevision != nil:
			arn = h.TargetServiceRevision.Arn
		case h.Status == ecs.ServiceDeploymentStatusROLLBACKSUCCESSFUL && h.Rollback != nil:
			arn = h.Rollback.ServiceRevisionArn
		default:
			continue
		}
		rev := s.Revision(arn)
		if rev == nil {
			continue
		}
		dep := Deployment{
			Deployment: ecs.Deployment{
				Id:                       RollbackDeploymentID(failedID),
				Status:                   DeploymentActive,
				TaskDefinition:           rev.TaskDefinition,
				LaunchType:               rev.LaunchType,
				CapacityProviderStrategy: rev.CapacityProviderStrategy,
				PlatformVersion:          rev.PlatformVersion,
				PlatformFamily:           rev.PlatformFamily,
				NetworkConfiguration:     rev.NetworkConfiguration,
				CreatedAt:                ecs.NewTime(now),
				UpdatedAt:                ecs.NewTime(now),
			},
			PlacementConstraints: rev.PlacementConstraints,
			PlacementStrategy:    rev.PlacementStrategy,
			ServiceRevisionArn:   rev.ServiceRevisionArn,
		}
		if f := s.Rollout(failedID); f != nil {
			dep.ServiceDeploymentArn = f.ServiceDeploymentArn
		}
		s.Rollouts = append(s.Rollouts, dep)
		return &s.Rollouts[len(s.Rollouts)-1]
	}
	return nil
}

// RollbackDeploymentID derives the id of the deployment that rolls back the
// failed one from its id, so deciding a rollback stays deterministic.
func RollbackDeploymentID(failedID string) string {
	var h uint64 = 14695981039346656037 // FNV-1a
	for _, c := range []byte(failedID + "/rollback") {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return fmt.Sprintf("ecs-svc/%019d", h%10000000000000000000)
}
