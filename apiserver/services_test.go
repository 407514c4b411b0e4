package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var svcScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

func svcWant(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	for _, p := range parts {
		if !strings.Contains(ae.ErrorMessage(), p) {
			t.Fatalf("message %q does not mention %q", ae.ErrorMessage(), p)
		}
	}
}

func svcTD(t *testing.T, env *testenv.Env, family string, mutate ...func(*awsecs.RegisterTaskDefinitionInput)) string {
	t.Helper()
	in := &awsecs.RegisterTaskDefinitionInput{Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{{
		Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(128), Essential: aws.Bool(true),
		PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
	}}}
	for _, m := range mutate {
		m(in)
	}
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		t.Fatalf("register %s: %v", family, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func svcCluster(t *testing.T, env *testenv.Env, name string) {
	t.Helper()
	if _, err := env.ECS.CreateCluster(context.Background(), &awsecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func svcDescribe(t *testing.T, env *testenv.Env, cluster, name string, include ...types.ServiceField) types.Service {
	t.Helper()
	out, err := env.ECS.DescribeServices(context.Background(), &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}, Include: include})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe %s: %v %+v", name, err, out)
	}
	return out.Services[0]
}

func svcEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServicesAPI(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	e := env.ECS
	svcCluster(t, env, "api")
	td1 := svcTD(t, env, "web")
	td2 := svcTD(t, env, "web")
	create := func(name string, mutate ...func(*awsecs.CreateServiceInput)) (*awsecs.CreateServiceOutput, error) {
		in := &awsecs.CreateServiceInput{Cluster: aws.String("api"), ServiceName: aws.String(name), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(0)}
		for _, m := range mutate {
			m(in)
		}
		return e.CreateService(ctx, in)
	}

	t.Run("CreateDefaults", func(t *testing.T) {
		out, err := create("defaults", func(in *awsecs.CreateServiceInput) {
			in.DesiredCount = aws.Int32(2)
			in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}
		})
		if err != nil {
			t.Fatal(err)
		}
		s := out.Service
		if aws.ToString(s.ServiceArn) != "arn:aws:ecs:us-east-1:123456789012:service/api/defaults" ||
			aws.ToString(s.ClusterArn) != "arn:aws:ecs:us-east-1:123456789012:cluster/api" || aws.ToString(s.Status) != "ACTIVE" {
			t.Fatalf("identity: %s %s %s", aws.ToString(s.ServiceArn), aws.ToString(s.ClusterArn), aws.ToString(s.Status))
		}
		if s.LaunchType != types.LaunchTypeEc2 || s.SchedulingStrategy != types.SchedulingStrategyReplica || s.DesiredCount != 2 ||
			s.PropagateTags != types.PropagateTagsNone || s.DeploymentController.Type != types.DeploymentControllerTypeEcs ||
			s.AvailabilityZoneRebalancing != types.AvailabilityZoneRebalancingEnabled {
			t.Fatalf("defaults: %+v", s)
		}
		dc := s.DeploymentConfiguration
		if aws.ToInt32(dc.MinimumHealthyPercent) != 100 || aws.ToInt32(dc.MaximumPercent) != 200 || dc.DeploymentCircuitBreaker == nil || dc.DeploymentCircuitBreaker.Enable {
			t.Fatalf("deployment configuration: %+v", dc)
		}
		if len(s.Deployments) != 1 {
			t.Fatalf("deployments %+v", s.Deployments)
		}
		d := s.Deployments[0]
		id := aws.ToString(d.Id)
		if len(id) != len("ecs-svc/")+19 || !strings.HasPrefix(id, "ecs-svc/") || aws.ToString(d.Status) != "PRIMARY" ||
			d.RolloutState != types.DeploymentRolloutStateInProgress || aws.ToString(d.RolloutStateReason) != "ECS deployment "+id+" in progress." ||
			d.DesiredCount != 2 || aws.ToString(d.TaskDefinition) != td1 || d.LaunchType != types.LaunchTypeEc2 || d.CreatedAt == nil {
			t.Fatalf("deployment %+v", d)
		}
		if s.Events == nil || len(s.Tags) != 1 || s.CreatedAt == nil || !strings.HasPrefix(aws.ToString(s.CreatedBy), "arn:aws:iam::123456789012:") {
			t.Fatalf("events %v tags %v createdAt %v createdBy %q", s.Events, s.Tags, s.CreatedAt, aws.ToString(s.CreatedBy))
		}
		// Tags only when asked for.
		if got := svcDescribe(t, env, "api", "defaults"); len(got.Tags) != 0 {
			t.Fatalf("tags without include: %v", got.Tags)
		}
		if got := svcDescribe(t, env, "api", "defaults", types.ServiceFieldTags); len(got.Tags) != 1 {
			t.Fatalf("tags with include: %v", got.Tags)
		}
		// The service is taggable by ARN.
		if _, err := e.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: s.ServiceArn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
			t.Fatal(err)
		}
		lt, err := e.ListTagsForResource(ctx, &awsecs.ListTagsForResourceInput{ResourceArn: s.ServiceArn})
		if err != nil || len(lt.Tags) != 2 {
			t.Fatalf("tags %v %v", err, lt)
		}
		// Counted into the cluster.
		dcl, _ := e.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"api"}})
		if dcl.Clusters[0].ActiveServicesCount < 1 {
			t.Fatalf("activeServicesCount %d", dcl.Clusters[0].ActiveServicesCount)
		}
	})

	t.Run("CreateValidation", func(t *testing.T) {
		_, err := create("bad name!")
		svcWant(t, err, ecs.CodeInvalidParameter, "serviceName")
		_, err = e.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("nope"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(1)})
		svcWant(t, err, ecs.CodeClusterNotFound)
		_, err = create("x", func(in *awsecs.CreateServiceInput) { in.TaskDefinition = aws.String("missing:1") })
		svcWant(t, err, ecs.CodeInvalidParameter, "TaskDefinition not found.")
		_, err = create("x", func(in *awsecs.CreateServiceInput) { in.DesiredCount = nil })
		svcWant(t, err, ecs.CodeInvalidParameter, "desiredCount")
		_, err = create("x", func(in *awsecs.CreateServiceInput) { in.SchedulingStrategy = types.SchedulingStrategyDaemon })
		svcWant(t, err, ecs.CodeInvalidParameter, "desiredCount", "DAEMON")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.SchedulingStrategy, in.DesiredCount = types.SchedulingStrategyDaemon, nil
			in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "placementStrategy")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.LaunchType = types.LaunchTypeEc2
			in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("cp")}}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "launch type and capacity provider strategy")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "Network Configuration is not valid")
		vpc := svcTD(t, env, "vpc", func(in *awsecs.RegisterTaskDefinitionInput) { in.NetworkMode = types.NetworkModeAwsvpc })
		_, err = create("x", func(in *awsecs.CreateServiceInput) { in.TaskDefinition = aws.String(vpc) })
		svcWant(t, err, ecs.CodeInvalidParameter, "Network Configuration must be provided")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.PlacementConstraints = []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:x ==")}}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "placementConstraints[0].expression")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			for i := 0; i < 6; i++ {
				in.PlacementStrategy = append(in.PlacementStrategy, types.PlacementStrategy{Type: types.PlacementStrategyTypeRandom})
			}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "placementStrategy")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.DeploymentConfiguration = &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(101)}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "minimumHealthyPercent")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.DeploymentConfiguration = &types.DeploymentConfiguration{MaximumPercent: aws.Int32(50)}
		})
		svcWant(t, err, ecs.CodeInvalidParameter, "maximumPercent")
		_, err = create("x", func(in *awsecs.CreateServiceInput) {
			in.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeExternal}
		})
		svcWant(t, err, ecs.CodeUnsupportedFeature, "deploymentController")
		inactive := svcTD(t, env, "old")
		if _, err := e.DeregisterTaskDefinition(ctx, &awsecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(inactive)}); err != nil {
			t.Fatal(err)
		}
		_, err = create("x", func(in *awsecs.CreateServiceInput) { in.TaskDefinition = aws.String(inactive) })
		svcWant(t, err, ecs.CodeInvalidParameter, "inactive")
	})

	t.Run("IdempotencyAndNames", func(t *testing.T) {
		tok := func(in *awsecs.CreateServiceInput) { in.ClientToken = aws.String("tok-1") }
		a, err := create("idem", tok)
		if err != nil {
			t.Fatal(err)
		}
		b, err := create("idem", tok)
		if err != nil || aws.ToString(b.Service.Deployments[0].Id) != aws.ToString(a.Service.Deployments[0].Id) {
			t.Fatalf("retry with the same token: %v", err)
		}
		_, err = create("idem", tok, func(in *awsecs.CreateServiceInput) { in.DesiredCount = aws.Int32(3) })
		svcWant(t, err, ecs.CodeInvalidParameter, "Creation of service was not idempotent.")
		_, err = create("idem")
		svcWant(t, err, ecs.CodeInvalidParameter, "Creation of service was not idempotent.")
		// Deleted (INACTIVE) names can be used again.
		if _, err := e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("idem")}); err != nil {
			t.Fatal(err)
		}
		svcEventually(t, "INACTIVE", func() bool { return aws.ToString(svcDescribe(t, env, "api", "idem").Status) == "INACTIVE" })
		c, err := create("idem")
		if err != nil || aws.ToString(c.Service.Status) != "ACTIVE" || aws.ToString(c.Service.Deployments[0].Id) == aws.ToString(a.Service.Deployments[0].Id) {
			t.Fatalf("re-create: %v", err)
		}
	})

	t.Run("DescribeAndList", func(t *testing.T) {
		svcCluster(t, env, "list")
		for i := 0; i < 5; i++ {
			in := &awsecs.CreateServiceInput{Cluster: aws.String("list"), ServiceName: aws.String(fmt.Sprintf("s%d", i)), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(0)}
			if i == 4 {
				in.SchedulingStrategy, in.DesiredCount = types.SchedulingStrategyDaemon, nil
			}
			if _, err := e.CreateService(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		out, err := e.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("list"), Services: []string{"s0", "arn:aws:ecs:us-east-1:123456789012:service/list/s1", "nope"}})
		if err != nil || len(out.Services) != 2 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
			aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/list/nope" {
			t.Fatalf("describe: %v %+v", err, out)
		}
		_, err = e.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("list"), Services: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")})
		svcWant(t, err, ecs.CodeInvalidParameter, "services")
		_, err = e.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"a"}})
		svcWant(t, err, ecs.CodeClusterNotFound)
		var all []string
		var next *string
		for {
			page, err := e.ListServices(ctx, &awsecs.ListServicesInput{Cluster: aws.String("list"), MaxResults: aws.Int32(2), NextToken: next})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.ServiceArns...)
			if page.NextToken == nil {
				break
			}
			next = page.NextToken
		}
		if len(all) != 5 {
			t.Fatalf("listed %v", all)
		}
		d, _ := e.ListServices(ctx, &awsecs.ListServicesInput{Cluster: aws.String("list"), SchedulingStrategy: types.SchedulingStrategyDaemon})
		if len(d.ServiceArns) != 1 || !strings.HasSuffix(d.ServiceArns[0], "/s4") {
			t.Fatalf("daemon filter: %v", d.ServiceArns)
		}
		f, _ := e.ListServices(ctx, &awsecs.ListServicesInput{Cluster: aws.String("list"), LaunchType: types.LaunchTypeFargate})
		if len(f.ServiceArns) != 0 {
			t.Fatalf("launch type filter: %v", f.ServiceArns)
		}
		_, err = e.ListServices(ctx, &awsecs.ListServicesInput{Cluster: aws.String("list"), MaxResults: aws.Int32(101)})
		svcWant(t, err, ecs.CodeInvalidParameter, "maxResults")
		// A deleted service is not listed but stays describable.
		if _, err := e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("list"), Service: aws.String("s0")}); err != nil {
			t.Fatal(err)
		}
		l, _ := e.ListServices(ctx, &awsecs.ListServicesInput{Cluster: aws.String("list")})
		if len(l.ServiceArns) != 4 {
			t.Fatalf("after delete: %v", l.ServiceArns)
		}
		if st := aws.ToString(svcDescribe(t, env, "list", "s0").Status); st != "DRAINING" && st != "INACTIVE" {
			t.Fatalf("deleted service status %s", st)
		}
	})

	t.Run("Update", func(t *testing.T) {
		out, err := create("upd", func(in *awsecs.CreateServiceInput) { in.DesiredCount = aws.Int32(1) })
		if err != nil {
			t.Fatal(err)
		}
		first := aws.ToString(out.Service.Deployments[0].Id)
		// Desired count alone: same deployment.
		u, err := e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), DesiredCount: aws.Int32(3)})
		if err != nil || len(u.Service.Deployments) != 1 || u.Service.DesiredCount != 3 || u.Service.Deployments[0].DesiredCount != 3 {
			t.Fatalf("scale: %v %+v", err, u)
		}
		// A new revision: a new PRIMARY, the old one ACTIVE.
		u, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), TaskDefinition: aws.String(td2)})
		if err != nil || len(u.Service.Deployments) != 2 || aws.ToString(u.Service.Deployments[0].Status) != "PRIMARY" ||
			aws.ToString(u.Service.Deployments[1].Status) != "ACTIVE" || aws.ToString(u.Service.Deployments[1].Id) != first ||
			aws.ToString(u.Service.TaskDefinition) != td2 {
			t.Fatalf("new revision: %v %+v", err, u.Service.Deployments)
		}
		// forceNewDeployment and placement changes start deployments too.
		u, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), ForceNewDeployment: true})
		if err != nil || len(u.Service.Deployments) != 3 {
			t.Fatalf("force: %v", err)
		}
		u, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"),
			PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}})
		if err != nil || len(u.Service.Deployments) != 4 || len(u.Service.PlacementStrategy) != 1 {
			t.Fatalf("placement: %v", err)
		}
		// Configuration only: no deployment.
		u, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"),
			DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50)}, HealthCheckGracePeriodSeconds: aws.Int32(30)})
		if err != nil || len(u.Service.Deployments) != 4 || aws.ToInt32(u.Service.DeploymentConfiguration.MinimumHealthyPercent) != 50 ||
			aws.ToInt32(u.Service.DeploymentConfiguration.MaximumPercent) != 200 || aws.ToInt32(u.Service.HealthCheckGracePeriodSeconds) != 30 {
			t.Fatalf("configuration: %v %+v", err, u.Service.DeploymentConfiguration)
		}
		_, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("nope"), DesiredCount: aws.Int32(1)})
		svcWant(t, err, ecs.CodeServiceNotFound)
		_, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), TaskDefinition: aws.String("missing:1")})
		svcWant(t, err, ecs.CodeInvalidParameter, "TaskDefinition not found.")
		if _, err := e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), Force: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		_, err = e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), DesiredCount: aws.Int32(1)})
		svcWant(t, err, ecs.CodeServiceNotActive)
		_, err = e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("upd"), Force: aws.Bool(true)})
		svcWant(t, err, ecs.CodeServiceNotActive)
	})

	t.Run("Delete", func(t *testing.T) {
		if _, err := create("del", func(in *awsecs.CreateServiceInput) { in.DesiredCount = aws.Int32(2) }); err != nil {
			t.Fatal(err)
		}
		_, err := e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("del")})
		svcWant(t, err, ecs.CodeInvalidParameter, "The service cannot be stopped while it is scaled above 0.")
		out, err := e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("arn:aws:ecs:us-east-1:123456789012:service/api/del"), Force: aws.Bool(true)})
		if err != nil || aws.ToString(out.Service.Status) != "DRAINING" || out.Service.DesiredCount != 0 {
			t.Fatalf("delete: %v %+v", err, out)
		}
		svcEventually(t, "INACTIVE", func() bool { return aws.ToString(svcDescribe(t, env, "api", "del").Status) == "INACTIVE" })
		_, err = e.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("api"), Service: aws.String("nope")})
		svcWant(t, err, ecs.CodeServiceNotFound)
	})

	t.Run("DeploymentsAndRevisions", func(t *testing.T) {
		out, err := create("dep")
		if err != nil {
			t.Fatal(err)
		}
		// Desired 0: the first deployment completes at once.
		svcEventually(t, "COMPLETED", func() bool {
			return svcDescribe(t, env, "api", "dep").Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
		})
		// A second one that cannot progress (no instances).
		if _, err := e.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("api"), Service: aws.String("dep"), TaskDefinition: aws.String(td2), DesiredCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		list, err := e.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("api"), Service: aws.String("dep")})
		if err != nil || len(list.ServiceDeployments) != 2 || list.ServiceDeployments[0].Status != types.ServiceDeploymentStatusInProgress ||
			list.ServiceDeployments[1].Status != types.ServiceDeploymentStatusSuccessful {
			t.Fatalf("list: %v %+v", err, list)
		}
		sdArn := aws.ToString(list.ServiceDeployments[0].ServiceDeploymentArn)
		if !strings.HasPrefix(sdArn, "arn:aws:ecs:us-east-1:123456789012:service-deployment/api/dep/") {
			t.Fatalf("service deployment ARN %s", sdArn)
		}
		filtered, _ := e.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("api"), Service: aws.String("dep"), Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusSuccessful}})
		if len(filtered.ServiceDeployments) != 1 {
			t.Fatalf("status filter: %+v", filtered)
		}
		desc, err := e.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{sdArn, sdArn + "x"}})
		if err != nil || len(desc.ServiceDeployments) != 1 || len(desc.Failures) != 1 || desc.ServiceDeployments[0].TargetServiceRevision == nil ||
			len(desc.ServiceDeployments[0].SourceServiceRevisions) != 1 {
			t.Fatalf("describe deployments: %v %+v", err, desc)
		}
		target := aws.ToString(desc.ServiceDeployments[0].TargetServiceRevision.Arn)
		revs, err := e.DescribeServiceRevisions(ctx, &awsecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{target, target + "9"}})
		if err != nil || len(revs.ServiceRevisions) != 1 || len(revs.Failures) != 1 || aws.ToString(revs.ServiceRevisions[0].TaskDefinition) != td2 ||
			len(revs.ServiceRevisions[0].ContainerImages) != 1 {
			t.Fatalf("describe revisions: %v %+v", err, revs)
		}
		// Stop with rollback: back on the first revision.
		if _, err := e.StopServiceDeployment(ctx, &awsecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(sdArn)}); err != nil {
			t.Fatal(err)
		}
		s := svcDescribe(t, env, "api", "dep")
		if aws.ToString(s.TaskDefinition) != td1 || aws.ToString(s.Deployments[0].Id) != aws.ToString(out.Service.Deployments[0].Id) {
			t.Fatalf("after rollback: %s %+v", aws.ToString(s.TaskDefinition), s.Deployments)
		}
		_, err = e.StopServiceDeployment(ctx, &awsecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(sdArn)})
		svcWant(t, err, ecs.CodeConflict)
		_, err = e.StopServiceDeployment(ctx, &awsecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String("arn:aws:ecs:us-east-1:123456789012:service-deployment/api/dep/nothing")})
		svcWant(t, err, ecs.CodeServiceDeploymentNotFound)
		_, err = e.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("api"), Service: aws.String("nope")})
		svcWant(t, err, ecs.CodeServiceNotFound)
	})

	t.Run("TaskProtection", func(t *testing.T) {
		// Task records as the controller writes them (no instances needed).
		put := func(id, service string) {
			task := &resource.Task{Task: ecs.Task{TaskArn: svcScope.TaskARN("api", id), LastStatus: "RUNNING", DesiredStatus: "RUNNING"},
				Scope: svcScope, Cluster: "api", ID: id, ServiceName: service}
			if _, err := env.CP.Store.Txn(ctx, store.Put(svcScope.TaskKey("api", id), resource.Encode(task))); err != nil {
				t.Fatal(err)
			}
		}
		put("0123456789abcdef0123456789abcdef", "prot")
		put("fedcba9876543210fedcba9876543210", "")
		svcEventually(t, "tasks in the cache", func() bool {
			_, ok := env.CP.Cache.Snapshot().Get(svcScope.TaskKey("api", "fedcba9876543210fedcba9876543210"))
			return ok
		})
		up, err := e.UpdateTaskProtection(ctx, &awsecs.UpdateTaskProtectionInput{Cluster: aws.String("api"), ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(60),
			Tasks: []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", "missing"}})
		if err != nil || len(up.ProtectedTasks) != 1 || !up.ProtectedTasks[0].ProtectionEnabled || up.ProtectedTasks[0].ExpirationDate == nil || len(up.Failures) != 2 {
			t.Fatalf("update protection: %v %+v", err, up)
		}
		reasons := map[string]bool{}
		for _, f := range up.Failures {
			reasons[aws.ToString(f.Reason)] = true
		}
		if !reasons["TASK_NOT_VALID"] || !reasons["MISSING"] {
			t.Fatalf("failures %+v", up.Failures)
		}
		got, err := e.GetTaskProtection(ctx, &awsecs.GetTaskProtectionInput{Cluster: aws.String("api"), Tasks: []string{svcScope.TaskARN("api", "0123456789abcdef0123456789abcdef")}})
		if err != nil || len(got.ProtectedTasks) != 1 || !got.ProtectedTasks[0].ProtectionEnabled {
			t.Fatalf("get protection: %v %+v", err, got)
		}
		_, err = e.UpdateTaskProtection(ctx, &awsecs.UpdateTaskProtectionInput{Cluster: aws.String("api"), ProtectionEnabled: true, ExpiresInMinutes: aws.Int32(3000), Tasks: []string{"x"}})
		svcWant(t, err, ecs.CodeInvalidParameter, "expiresInMinutes")
		off, err := e.UpdateTaskProtection(ctx, &awsecs.UpdateTaskProtectionInput{Cluster: aws.String("api"), ProtectionEnabled: false, Tasks: []string{"0123456789abcdef0123456789abcdef"}})
		if err != nil || off.ProtectedTasks[0].ProtectionEnabled || off.ProtectedTasks[0].ExpirationDate != nil {
			t.Fatalf("protection off: %v %+v", err, off)
		}
	})
}
