package apiserver

import (
	"strconv"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/resource"
)

// Service deployments and service revisions. Each deployment of a service
// (resource.Deployment, ecs-svc/<id>) has one service deployment record
// (service-deployment/<cluster>/<service>/<id>) and deploys one service
// revision (service-revision/<cluster>/<service>/<id>); both are kept in the
// service record, newest first, bounded by resource.MaxServiceHistory.

const (
	maxDescribeServiceDeployments = 20
	maxListServiceDeployments     = 100
	defaultListServiceDeployments = 20
)

// ---- ListServiceDeployments

func (s *Server) listServiceDeployments(c *Call, in *ecs.ListServiceDeploymentsRequest) (*ecs.ListServiceDeploymentsResponse, error) {
	limit := defaultListServiceDeployments
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListServiceDeployments {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxListServiceDeployments, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	name, err := svcRefName(c.Scope(), cl.ClusterName, in.Service)
	if err != nil {
		return nil, err
	}
	rec, ok := Peek[resource.Service](c.Snapshot(), c.Scope().ServiceKey(cl.ClusterName, name))
	if !ok {
		return nil, errServiceNotFound()
	}
	start := 0
	if in.NextToken != "" {
		tok, err := svcDecodeToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		n, perr := strconv.Atoi(tok)
		if perr != nil || n < 0 {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken value from the previous response unchanged.")
		}
		start = n
	}
	out := &ecs.ListServiceDeploymentsResponse{ServiceDeployments: []ecs.ServiceDeploymentBrief{}}
	matched := 0
	for _, h := range rec.History {
		if len(in.Status) > 0 && !svcStatusIn(h.Status, in.Status) {
			continue
		}
		if ca := in.CreatedAt; ca != nil && h.CreatedAt != nil {
			if ca.After != nil && h.CreatedAt.Before(ca.After.Time) {
				continue
			}
			if ca.Before != nil && h.CreatedAt.After(ca.Before.Time) {
				continue
			}
		}
		matched++
		if matched <= start {
			continue
		}
		if len(out.ServiceDeployments) == limit {
			out.NextToken = svcEncodeToken(strconv.Itoa(start + limit))
			break
		}
		brief := ecs.ServiceDeploymentBrief{
			ServiceDeploymentArn: h.ServiceDeploymentArn, ServiceArn: h.ServiceArn, ClusterArn: h.ClusterArn,
			CreatedAt: h.CreatedAt, StartedAt: h.StartedAt, FinishedAt: h.FinishedAt,
			Status: h.Status, StatusReason: h.StatusReason,
		}
		if h.TargetServiceRevision != nil {
			brief.TargetServiceRevisionArn = h.TargetServiceRevision.Arn
		}
		out.ServiceDeployments = append(out.ServiceDeployments, brief)
	}
	return out, nil
}

func svcStatusIn(st ecs.ServiceDeploymentStatus, in []ecs.ServiceDeploymentStatus) bool {
	for _, s := range in {
		if s == st {
			return true
		}
	}
	return false
}

// ---- DescribeServiceDeployments

func (s *Server) describeServiceDeployments(c *Call, in *ecs.DescribeServiceDeploymentsRequest) (*ecs.DescribeServiceDeploymentsResponse, error) {
	if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > maxDescribeServiceDeployments {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "serviceDeploymentArns: between 1 and %d ARNs are required; got %d.", maxDescribeServiceDeployments, len(in.ServiceDeploymentArns))
	}
	out := &ecs.DescribeServiceDeploymentsResponse{ServiceDeployments: []ecs.ServiceDeployment{}, Failures: []ecs.Failure{}}
	for _, arn := range in.ServiceDeploymentArns {
		rec, _ := s.svcByChildARN(c, arn, "service-deployment")
		var h *resource.ServiceDeploymentRecord
		if rec != nil {
			h = rec.HistoryRecord(arn)
		}
		if h == nil {
			out.Failures = append(out.Failures, ecs.Failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		sd := h.ServiceDeployment
		s.svcDeploymentCounts(c, rec, h, &sd)
		out.ServiceDeployments = append(out.ServiceDeployments, sd)
	}
	return out, nil
}

// svcDeploymentCounts fills the live task counts of a service deployment's
// target (and, while it runs, source) revisions.
func (s *Server) svcDeploymentCounts(c *Call, rec *resource.Service, h *resource.ServiceDeploymentRecord, sd *ecs.ServiceDeployment) {
	counts := svcCounts(c.Snapshot(), rec.Scope, rec.Cluster)[rec.ServiceName]
	fill := func(sum *ecs.ServiceRevisionSummary) {
		if counts == nil || sum == nil {
			return
		}
		for _, r := range rec.Rollouts {
			if r.ServiceRevisionArn == sum.Arn {
				if dc := counts.byDep[r.Id]; dc != nil {
					sum.RunningTaskCount, sum.PendingTaskCount = dc.running, dc.pending
				}
			}
		}
	}
	if sd.TargetServiceRevision != nil {
		t := *sd.TargetServiceRevision
		fill(&t)
		sd.TargetServiceRevision = &t
	}
	src := make([]ecs.ServiceRevisionSummary, len(sd.SourceServiceRevisions))
	for i, r := range sd.SourceServiceRevisions {
		src[i] = r
		fill(&src[i])
	}
	sd.SourceServiceRevisions = src
	if sd.DeploymentCircuitBreaker != nil {
		cb := *sd.DeploymentCircuitBreaker
		if d := rec.Rollout(h.DeploymentID); d != nil && cb.Status != ecs.ServiceDeploymentRollbackMonitorsStatusDISABLED {
			cb.FailureCount = max(d.FailedTasks, d.HealthFailures, cb.FailureCount)
		}
		sd.DeploymentCircuitBreaker = &cb
	}
}

// svcByChildARN finds the service a service-deployment or service-revision
// ARN (<type>/<cluster>/<service>/<id>) belongs to.
func (s *Server) svcByChildARN(c *Call, arn, typ string) (*resource.Service, error) {
	a, err := resource.ParseARN(arn)
	if err != nil || a.Type != typ || len(a.Parts) != 3 || a.Scope != c.Scope() {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "%q is not a valid %s ARN of this account and region.", arn, typ)
	}
	rec, ok := Peek[resource.Service](c.Snapshot(), a.Scope.ServiceKey(a.Parts[0], a.Parts[1]))
	if !ok {
		return nil, nil
	}
	return rec, nil
}

// ---- StopServiceDeployment

func (s *Server) stopServiceDeployment(c *Call, in *ecs.StopServiceDeploymentRequest) (*ecs.StopServiceDeploymentResponse, error) {
	a, err := resource.ParseARN(in.ServiceDeploymentArn)
	if err != nil || a.Type != "service-deployment" || len(a.Parts) != 3 || a.Scope != c.Scope() {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "serviceDeploymentArn: %q is not a valid service deployment ARN of this account and region.", in.ServiceDeploymentArn)
	}
	stopType := in.StopType
	if stopType == "" {
		stopType = ecs.StopServiceDeploymentStopTypeROLLBACK
	}
	notFound := ecs.Errorf(ecs.CodeServiceDeploymentNotFound, "The service deployment %s was not found.", in.ServiceDeploymentArn)
	key := a.Scope.ServiceKey(a.Parts[0], a.Parts[1])
	_, err = Mutate(c, key, func(cur *resource.Service) (*resource.Service, error) {
		if cur == nil {
			return nil, notFound
		}
		h := cur.HistoryRecord(in.ServiceDeploymentArn)
		if h == nil {
			return nil, notFound
		}
		p := cur.Primary()
		if h.Status != ecs.ServiceDeploymentStatusINPROGRESS || p == nil || p.Id != h.DeploymentID || cur.Status != resource.ServiceActive {
			return nil, ecs.Errorf(ecs.CodeConflict, "The service deployment %s is not in progress (status %s); only an in-progress deployment can be stopped.", in.ServiceDeploymentArn, h.Status)
		}
		now := ecs.NewTime(c.Now)
		p.RolloutState = ecs.DeploymentRolloutStateFAILED
		p.UpdatedAt = now
		h.UpdatedAt = now
		switch stopType {
		case ecs.StopServiceDeploymentStopTypeABORT:
			// The deployment stops where it is; the service keeps what runs.
			p.RolloutStateReason = "Service deployment stopped by request."
			h.Status = ecs.ServiceDeploymentStatusSTOPPED
			h.StatusReason = p.RolloutStateReason
			h.StoppedAt = now
		default:
			reason := "Service deployment rolled back by request."
			p.RolloutStateReason = reason
			np := cur.RollBack(p.Id, reason, c.Now)
			if np == nil {
				return nil, ecs.Errorf(ecs.CodeConflict, "The service has no completed deployment to roll back to.")
			}
			h.Status = ecs.ServiceDeploymentStatusROLLBACKINPROGRESS
			h.StatusReason = reason
			h.Rollback = &ecs.Rollback{Reason: reason, ServiceRevisionArn: np.ServiceRevisionArn, StartedAt: now}
		}
		cur.Generation++
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.StopServiceDeploymentResponse{ServiceDeploymentArn: in.ServiceDeploymentArn}, nil
}

// ---- DescribeServiceRevisions

func (s *Server) describeServiceRevisions(c *Call, in *ecs.DescribeServiceRevisionsRequest) (*ecs.DescribeServiceRevisionsResponse, error) {
	if len(in.ServiceRevisionArns) == 0 || len(in.ServiceRevisionArns) > maxDescribeServiceDeployments {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "serviceRevisionArns: between 1 and %d ARNs are required; got %d.", maxDescribeServiceDeployments, len(in.ServiceRevisionArns))
	}
	out := &ecs.DescribeServiceRevisionsResponse{ServiceRevisions: []ecs.ServiceRevision{}, Failures: []ecs.Failure{}}
	for _, arn := range in.ServiceRevisionArns {
		rec, _ := s.svcByChildARN(c, arn, "service-revision")
		var r *resource.ServiceRevisionRecord
		if rec != nil {
			r = rec.Revision(arn)
		}
		if r == nil {
			out.Failures = append(out.Failures, ecs.Failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		rv := r.ServiceRevision
		rv.LoadBalancers = wireList(rv.LoadBalancers)
		rv.ServiceRegistries = wireList(rv.ServiceRegistries)
		rv.ContainerImages = wireList(rv.ContainerImages)
		out.ServiceRevisions = append(out.ServiceRevisions, rv)
	}
	return out, nil
}
