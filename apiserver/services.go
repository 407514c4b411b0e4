package apiserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Service operations: CreateService, UpdateService, DeleteService,
// DescribeServices, ListServices (this file), the service deployments and
// revisions (services_deployments.go) and task scale-in protection
// (services_protection.go). Validation is in services_validate.go, the wire
// view in services_view.go.
//
// The API writes a service's spec and starts its deployments; the service
// controller (controller/service, on the leader) does the rest: launching and
// stopping tasks, rollout states, events. A deleted service goes DRAINING,
// then INACTIVE once its tasks have stopped, and stays describable as
// INACTIVE (Terraform's destroy waits to see it).

const (
	maxDescribeServices = 10
	maxListServices     = 100
	defaultListServices = 10
	maxServiceToken     = 36
)

func (s *Server) registerServices() {
	s.ops[ecs.OpCreateService] = op(s.createService)
	s.ops[ecs.OpUpdateService] = op(s.updateService)
	s.ops[ecs.OpDeleteService] = op(s.deleteService)
	s.ops[ecs.OpDescribeServices] = op(s.describeServices)
	s.ops[ecs.OpListServices] = op(s.listServices)
	s.ops[ecs.OpListServiceDeployments] = op(s.listServiceDeployments)
	s.ops[ecs.OpDescribeServiceDeployments] = op(s.describeServiceDeployments)
	s.ops[ecs.OpStopServiceDeployment] = op(s.stopServiceDeployment)
	s.ops[ecs.OpDescribeServiceRevisions] = op(s.describeServiceRevisions)
	s.ops[ecs.OpUpdateTaskProtection] = op(s.updateTaskProtection)
	s.ops[ecs.OpGetTaskProtection] = op(s.getTaskProtection)
}

func errServiceNotFound() error { return ecs.Errorf(ecs.CodeServiceNotFound, "Service not found.") }

func errServiceNotActive() error {
	return ecs.Errorf(ecs.CodeServiceNotActive, "Service was not ACTIVE.")
}

// ---- CreateService

func (s *Server) createService(c *Call, in *ecs.CreateServiceRequest) (*ecs.CreateServiceResponse, error) {
	if !clusterNameRE.MatchString(in.ServiceName) {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "serviceName: %q is not valid: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.", in.ServiceName)
	}
	if err := svcValidateToken(in.ClientToken); err != nil {
		return nil, err
	}
	cl, clRev, err := s.resolveClusterRev(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	spec, err := s.validateCreateService(c, cl, in)
	if err != nil {
		return nil, err
	}
	hash := svcRequestHash(in)
	scope := c.Scope()
	key := scope.ServiceKey(cl.ClusterName, in.ServiceName)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, exists := Get[resource.Service](c, key)
		if exists && cur.Status != resource.ServiceInactive {
			// A retry of the same request (same token and parameters) gets the
			// service it created; anything else is a name clash.
			if in.ClientToken != "" && cur.ClientToken == in.ClientToken && cur.RequestHash == hash {
				view := s.serviceView(c, cur, svcCounts(c.Snapshot(), scope, cl.ClusterName), true)
				return &ecs.CreateServiceResponse{Service: &view}, nil
			}
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "Creation of service was not idempotent.")
		}
		rec := s.newServiceRecord(c, cl, in, spec)
		rec.ClientToken, rec.RequestHash = in.ClientToken, hash
		if exists {
			// Re-creating a deleted (INACTIVE) service under its name.
			rec.Generation = cur.Generation + 1
		}
		op := store.Create(key, resource.Encode(rec))
		if exists {
			op = store.Update(key, resource.Encode(rec), rev)
		}
		// The cluster's revision guards against a concurrent DeleteCluster.
		if _, err := c.Commit(op, store.Check(scope.ClusterKey(cl.ClusterName), clRev)); err != nil {
			if errors.Is(err, store.ErrConflict) {
				if cl, clRev, err = s.resolveClusterRev(c, in.Cluster, false); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		view := s.serviceView(c, rec, nil, true)
		return &ecs.CreateServiceResponse{Service: &view}, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "Service %s is being changed by another request; retry.", in.ServiceName)
}

// newServiceRecord builds an ACTIVE service with its first deployment.
func (s *Server) newServiceRecord(c *Call, cl *resource.Cluster, in *ecs.CreateServiceRequest, spec *serviceSpec) *resource.Service {
	scope := c.Scope()
	name := in.ServiceName
	createdBy := c.Identity.Principal
	if createdBy == "" && c.Identity.Account != "" {
		createdBy = "arn:aws:iam::" + c.Identity.Account + ":root"
	}
	rec := &resource.Service{
		Service: ecs.Service{
			ServiceArn:                    scope.ServiceARN(cl.ClusterName, name),
			ServiceName:                   name,
			ClusterArn:                    cl.ClusterArn,
			Status:                        resource.ServiceActive,
			DesiredCount:                  spec.desired,
			TaskDefinition:                spec.td.TaskDefinitionArn,
			LaunchType:                    spec.launchType,
			CapacityProviderStrategy:      spec.capacity,
			PlatformVersion:               spec.platformVersion,
			LoadBalancers:                 in.LoadBalancers,
			ServiceRegistries:             in.ServiceRegistries,
			RoleArn:                       svcRoleARN(scope, in.Role),
			DeploymentConfiguration:       spec.deployment,
			DeploymentController:          &ecs.DeploymentController{Type: ecs.DeploymentControllerTypeECS},
			PlacementConstraints:          in.PlacementConstraints,
			PlacementStrategy:             in.PlacementStrategy,
			NetworkConfiguration:          in.NetworkConfiguration,
			HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds,
			SchedulingStrategy:            spec.scheduling,
			CreatedAt:                     ecs.NewTime(c.Now),
			CreatedBy:                     createdBy,
			EnableECSManagedTags:          in.EnableECSManagedTags,
			EnableExecuteCommand:          in.EnableExecuteCommand,
			PropagateTags:                 spec.propagate,
			Tags:                          in.Tags,
			AvailabilityZoneRebalancing:   spec.azRebalancing,
		},
		Scope:   scope,
		Cluster: cl.ClusterName,
	}
	s.startDeployment(c, rec, spec.td)
	return rec
}

// startDeployment makes a new PRIMARY deployment of the service's current
// spec, with its service deployment and service revision records.
func (s *Server) startDeployment(c *Call, rec *resource.Service, td *resource.TaskDefinition) {
	scope := c.Scope()
	id := "ecs-svc/" + svcDigits(19)
	sdArn := scope.ServiceDeploymentARN(rec.Cluster, rec.ServiceName, svcRandomID(21))
	revArn := scope.ServiceRevisionARN(rec.Cluster, rec.ServiceName, svcDigits(19))
	now := ecs.NewTime(c.Now)
	dep := resource.Deployment{
		Deployment: ecs.Deployment{
			Id:                       id,
			TaskDefinition:           rec.TaskDefinition,
			CreatedAt:                now,
			UpdatedAt:                now,
			LaunchType:               rec.LaunchType,
			CapacityProviderStrategy: rec.CapacityProviderStrategy,
			PlatformVersion:          rec.PlatformVersion,
			NetworkConfiguration:     rec.NetworkConfiguration,
			RolloutState:             ecs.DeploymentRolloutStateINPROGRESS,
			RolloutStateReason:       "ECS deployment " + id + " in progress.",
		},
		PlacementConstraints: rec.PlacementConstraints,
		PlacementStrategy:    rec.PlacementStrategy,
		ServiceDeploymentArn: sdArn,
		ServiceRevisionArn:   revArn,
	}
	var sources []ecs.ServiceRevisionSummary
	if p := rec.Primary(); p != nil {
		sources = append(sources, ecs.ServiceRevisionSummary{Arn: p.ServiceRevisionArn})
	}
	breaker := &ecs.ServiceDeploymentCircuitBreaker{Status: ecs.ServiceDeploymentRollbackMonitorsStatusDISABLED}
	if dc := rec.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil && dc.DeploymentCircuitBreaker.Enable {
		breaker.Status = ecs.ServiceDeploymentRollbackMonitorsStatusMONITORING
		breaker.Threshold = svcBreakerThreshold(rec.DesiredCount)
	}
	history := &resource.ServiceDeploymentRecord{
		DeploymentID: id,
		ServiceDeployment: ecs.ServiceDeployment{
			ServiceDeploymentArn:     sdArn,
			ServiceArn:               rec.ServiceArn,
			ClusterArn:               rec.ClusterArn,
			CreatedAt:                now,
			StartedAt:                now,
			UpdatedAt:                now,
			Status:                   ecs.ServiceDeploymentStatusINPROGRESS,
			SourceServiceRevisions:   sources,
			TargetServiceRevision:    &ecs.ServiceRevisionSummary{Arn: revArn, RequestedTaskCount: rec.DesiredCount},
			DeploymentConfiguration:  rec.DeploymentConfiguration,
			DeploymentCircuitBreaker: breaker,
		},
	}
	var images []ecs.ContainerImage
	for _, cd := range td.ContainerDefinitions {
		images = append(images, ecs.ContainerImage{ContainerName: cd.Name, Image: cd.Image})
	}
	rev := &resource.ServiceRevisionRecord{
		ServiceRevision: ecs.ServiceRevision{
			ServiceRevisionArn:       revArn,
			ServiceArn:               rec.ServiceArn,
			ClusterArn:               rec.ClusterArn,
			TaskDefinition:           rec.TaskDefinition,
			CapacityProviderStrategy: rec.CapacityProviderStrategy,
			LaunchType:               rec.LaunchType,
			PlatformVersion:          rec.PlatformVersion,
			LoadBalancers:            rec.LoadBalancers,
			ServiceRegistries:        rec.ServiceRegistries,
			NetworkConfiguration:     rec.NetworkConfiguration,
			ContainerImages:          images,
			CreatedAt:                now,
		},
		PlacementConstraints: rec.PlacementConstraints,
		PlacementStrategy:    rec.PlacementStrategy,
	}
	rec.StartDeployment(dep, history, rev)
}

// svcBreakerThreshold mirrors the controller's: half the desired count,
// between 3 and 200.
func svcBreakerThreshold(desired int32) int32 {
	return min(max((desired+1)/2, 3), 200)
}

// ---- UpdateService

func (s *Server) updateService(c *Call, in *ecs.UpdateServiceRequest) (*ecs.UpdateServiceResponse, error) {
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	name, err := svcRefName(c.Scope(), cl.ClusterName, in.Service)
	if err != nil {
		return nil, err
	}
	key := c.Scope().ServiceKey(cl.ClusterName, name)
	rec, err := Mutate(c, key, func(cur *resource.Service) (*resource.Service, error) {
		if cur == nil {
			return nil, errServiceNotFound()
		}
		if cur.Status != resource.ServiceActive {
			return nil, errServiceNotActive()
		}
		if err := s.applyServiceUpdate(c, cl, cur, in); err != nil {
			return nil, err
		}
		cur.Generation++
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	view := s.serviceView(c, rec, svcCounts(c.Snapshot(), c.Scope(), cl.ClusterName), true)
	return &ecs.UpdateServiceResponse{Service: &view}, nil
}

// ---- DeleteService

func (s *Server) deleteService(c *Call, in *ecs.DeleteServiceRequest) (*ecs.DeleteServiceResponse, error) {
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	name, err := svcRefName(c.Scope(), cl.ClusterName, in.Service)
	if err != nil {
		return nil, err
	}
	force := in.Force != nil && *in.Force
	key := c.Scope().ServiceKey(cl.ClusterName, name)
	rec, err := Mutate(c, key, func(cur *resource.Service) (*resource.Service, error) {
		if cur == nil {
			return nil, errServiceNotFound()
		}
		if cur.Status != resource.ServiceActive {
			return nil, errServiceNotActive()
		}
		if !force && cur.DesiredCount > 0 && cur.SchedulingStrategy != ecs.SchedulingStrategyDAEMON {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "The service cannot be stopped while it is scaled above 0.")
		}
		cur.Status = resource.ServiceDraining
		cur.DesiredCount = 0
		now := c.Now
		cur.DeletedAt = &now
		cur.Steady = false
		cur.Generation++
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	view := s.serviceView(c, rec, svcCounts(c.Snapshot(), c.Scope(), cl.ClusterName), true)
	return &ecs.DeleteServiceResponse{Service: &view}, nil
}

// ---- DescribeServices

func (s *Server) describeServices(c *Call, in *ecs.DescribeServicesRequest) (*ecs.DescribeServicesResponse, error) {
	if len(in.Services) == 0 {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "services: at least one service name or ARN is required.")
	}
	if len(in.Services) > maxDescribeServices {
		return nil, ecs.Errorf(ecs.CodeInvalidParameter, "services: at most %d services can be described at once; got %d.", maxDescribeServices, len(in.Services))
	}
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	snap := c.Snapshot()
	counts := svcCounts(snap, scope, cl.ClusterName)
	tags := slices.Contains(in.Include, ecs.ServiceFieldTAGS)
	out := &ecs.DescribeServicesResponse{Services: []ecs.Service{}, Failures: []ecs.Failure{}}
	for _, ref := range in.Services {
		name, err := svcRefName(scope, cl.ClusterName, ref)
		if err != nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = scope.ServiceARN(cl.ClusterName, ref)
			}
			out.Failures = append(out.Failures, ecs.Failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		rec, ok := Peek[resource.Service](snap, scope.ServiceKey(cl.ClusterName, name))
		if !ok {
			out.Failures = append(out.Failures, ecs.Failure{Arn: scope.ServiceARN(cl.ClusterName, name), Reason: "MISSING"})
			continue
		}
		out.Services = append(out.Services, s.serviceView(c, rec, counts, tags))
	}
	return out, nil
}

// ---- ListServices

func (s *Server) listServices(c *Call, in *ecs.ListServicesRequest) (*ecs.ListServicesResponse, error) {
	limit := defaultListServices
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListServices {
			return nil, ecs.Errorf(ecs.CodeInvalidParameter, "maxResults: must be between 1 and %d; got %d.", maxListServices, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	cl, err := s.resolveCluster(c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	scope := c.Scope()
	prefix := scope.KindPrefix(resource.KindService, cl.ClusterName)
	from := prefix
	if in.NextToken != "" {
		after, err := svcDecodeToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		from = prefix + after + "\x00"
	}
	out := &ecs.ListServicesResponse{ServiceArns: []string{}}
	last := ""
	c.Snapshot().WalkFrom(prefix, from, func(e *cache.Entry) bool {
		rec, ok := e.Obj.(*resource.Service)
		// Deleted services (DRAINING, INACTIVE) are not listed, as in ECS.
		if !ok || rec.Status != resource.ServiceActive {
			return true
		}
		if in.LaunchType != "" && rec.LaunchType != in.LaunchType {
			return true
		}
		if in.SchedulingStrategy != "" && rec.SchedulingStrategy != in.SchedulingStrategy {
			return true
		}
		if len(out.ServiceArns) == limit {
			out.NextToken = svcEncodeToken(last)
			return false
		}
		out.ServiceArns = append(out.ServiceArns, rec.ServiceArn)
		last = rec.ServiceName
		return true
	})
	return out, nil
}

// ---- references, tokens, ids

// svcRefName turns a service reference (a name, or a service ARN of the
// caller's account and region in the given cluster) into a service name.
func svcRefName(scope resource.Scope, cluster, ref string) (string, error) {
	if ref == "" {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "service: a service name or ARN is required.")
	}
	if !strings.HasPrefix(ref, "arn:") {
		if !clusterNameRE.MatchString(ref) {
			return "", ecs.Errorf(ecs.CodeInvalidParameter, "service: %q is not a valid service name or ARN.", ref)
		}
		return ref, nil
	}
	a, err := resource.ParseARN(ref)
	if err != nil || a.Type != "service" || a.Scope != scope {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "service: %q is not a valid service ARN of this account and region.", ref)
	}
	switch len(a.Parts) {
	case 1: // the old short format, service/<name>
		return a.Parts[0], nil
	case 2:
		if a.Parts[0] != cluster {
			return "", errServiceNotFound()
		}
		return a.Parts[1], nil
	}
	return "", ecs.Errorf(ecs.CodeInvalidParameter, "service: %q is not a valid service ARN.", ref)
}

func svcEncodeToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after))
}

func svcDecodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return "", ecs.Errorf(ecs.CodeInvalidParameter, "nextToken: the token is not valid; pass the nextToken value from the previous response unchanged.")
	}
	return string(b), nil
}

func svcValidateToken(tok string) error {
	if len(tok) > maxServiceToken {
		return ecs.Errorf(ecs.CodeInvalidParameter, "clientToken: must be at most %d characters; got %d.", maxServiceToken, len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 33 || tok[i] > 126 {
			return ecs.Errorf(ecs.CodeInvalidParameter, "clientToken: only ASCII characters 33-126 are allowed.")
		}
	}
	return nil
}

// svcRequestHash fingerprints a create request without its token.
func svcRequestHash(in *ecs.CreateServiceRequest) string {
	cp := *in
	cp.ClientToken = ""
	b, _ := json.Marshal(&cp)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// svcRoleARN turns a role name into its ARN (ECS accepts either).
func svcRoleARN(scope resource.Scope, role string) string {
	if role == "" || strings.HasPrefix(role, "arn:") {
		return role
	}
	if strings.HasPrefix(role, "/") {
		return "arn:aws:iam::" + scope.Account + ":role" + role
	}
	return "arn:aws:iam::" + scope.Account + ":role/" + role
}

// svcDigits returns n random decimal digits (deployment ids are
// ecs-svc/<19 digits>).
func svcDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b[i] = byte('0' + d.Int64())
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

// svcRandomID returns n random letters, digits, '-' and '_' (service
// deployment ids).
func svcRandomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		d, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[d.Int64()]
	}
	return string(b)
}
