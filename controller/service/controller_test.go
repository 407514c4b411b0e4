package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

// These tests run the whole path — SDK → API → store → cache → service
// controller (elected through etcd) → planner → simulated agent — on one
// control plane, each subtest in its own cluster.

func registerTD(t testing.TB, env *testenv.Env, family, image string, healthCheck bool) string {
	t.Helper()
	cd := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String(image), Cpu: 256, Memory: aws.Int32(256), Essential: aws.Bool(true)}
	if healthCheck {
		cd.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "true"}}
	}
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{cd},
	})
	if err != nil {
		t.Fatalf("register task definition: %v", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func createCluster(t testing.TB, env *testenv.Env, name string) {
	t.Helper()
	if _, err := env.ECS.CreateCluster(context.Background(), &awsecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatalf("create cluster: %v", err)
	}
}

func describe(t testing.TB, env *testenv.Env, cluster, service string) types.Service {
	t.Helper()
	out, err := env.ECS.DescribeServices(context.Background(), &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe %s: %v %+v", service, err, out)
	}
	return out.Services[0]
}

// waitStable is `aws ecs wait services-stable`: the SDK's own waiter.
func waitStable(t testing.TB, env *testenv.Env, cluster, service string, timeout time.Duration) {
	t.Helper()
	w := awsecs.NewServicesStableWaiter(env.ECS, func(o *awsecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(context.Background(), &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}}, timeout); err != nil {
		s := describe(t, env, cluster, service)
		t.Fatalf("service %s not stable: %v; running %d pending %d desired %d deployments %d events %q", service, err, s.RunningCount, s.PendingCount, s.DesiredCount, len(s.Deployments), eventMessages(s, 6))
	}
}

func eventMessages(s types.Service, n int) []string {
	var out []string
	for _, e := range s.Events {
		if len(out) == n {
			break
		}
		out = append(out, aws.ToString(e.Message))
	}
	return out
}

func hasEvent(s types.Service, substr string) bool {
	return slices.ContainsFunc(s.Events, func(e types.ServiceEvent) bool { return strings.Contains(aws.ToString(e.Message), substr) })
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServiceScheduler(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()

	t.Run("SteadyState", func(t *testing.T) {
		createCluster(t, env, "steady")
		f := newSimFleet(t, env, "steady")
		for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
			f.addInstance(fmt.Sprintf("i%d", i), az, 4096, 8192)
		}
		td := registerTD(t, env, "steady", "busybox", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("steady"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "steady", "web", 20*time.Second)
		eventually(t, 5*time.Second, "steady-state event", func() bool {
			return hasEvent(describe(t, env, "steady", "web"), "(service web) has reached a steady state.")
		})
		s := describe(t, env, "steady", "web")
		if s.RunningCount != 3 || len(s.Deployments) != 1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
			t.Fatalf("running %d deployments %+v", s.RunningCount, s.Deployments)
		}
		if !hasEvent(s, "(service web) has started 3 tasks:") || !hasEvent(s, "deployment completed.") {
			t.Fatalf("events %q", eventMessages(s, 10))
		}
		// Spread across the three zones, one task each; service fields set.
		zones := map[string]int{}
		for _, tk := range f.tasks("web") {
			zones[tk.AvailabilityZone]++
			if tk.Group != "service:web" || tk.StartedBy != aws.ToString(s.Deployments[0].Id) || tk.DeploymentID != tk.StartedBy {
				t.Fatalf("task %s group %q startedBy %q deployment %q", tk.ID, tk.Group, tk.StartedBy, tk.DeploymentID)
			}
		}
		if len(zones) != 3 {
			t.Fatalf("tasks not spread across zones: %v", zones)
		}
	})

	t.Run("RollingUpdateWithinBounds", func(t *testing.T) {
		createCluster(t, env, "rolling")
		f := newSimFleet(t, env, "rolling")
		f.startWait = 50 * time.Millisecond
		for i := 0; i < 4; i++ {
			f.addInstance(fmt.Sprintf("i%d", i), fmt.Sprintf("us-east-1%c", 'a'+i%2), 4096, 8192)
		}
		td1 := registerTD(t, env, "rolling", "busybox:1", false)
		td2 := registerTD(t, env, "rolling", "busybox:2", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("rolling"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(6),
			DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150)}})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "rolling", "web", 20*time.Second)
		if _, err := env.ECS.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("rolling"), Service: aws.String("web"), TaskDefinition: aws.String(td2)}); err != nil {
			t.Fatal(err)
		}
		// Sample the counts until the deployment completes: never more than
		// floor(6 × 150%) = 9 tasks, never fewer than ceil(6 × 50%) = 3 running.
		deadline := time.Now().Add(20 * time.Second)
		samples := 0
		for {
			s := describe(t, env, "rolling", "web")
			samples++
			if total := s.RunningCount + s.PendingCount; total > 9 || s.RunningCount < 3 {
				t.Fatalf("bounds violated: running %d pending %d", s.RunningCount, s.PendingCount)
			}
			if len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted && aws.ToString(s.TaskDefinition) == td2 && s.RunningCount == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deployment did not complete: %+v", s.Deployments)
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitStable(t, env, "rolling", "web", 10*time.Second)
		for _, tk := range f.tasks("web") {
			if tk.LastStatus != "STOPPED" && tk.TaskDefinitionArn != td2 {
				t.Fatalf("task %s of %s still running", tk.ID, tk.TaskDefinitionArn)
			}
		}
		t.Logf("%d samples", samples)
	})

	t.Run("CircuitBreakerRollback", func(t *testing.T) {
		createCluster(t, env, "breaker")
		f := newSimFleet(t, env, "breaker")
		f.addInstance("i0", "us-east-1a", 4096, 8192)
		f.addInstance("i1", "us-east-1b", 4096, 8192)
		good := registerTD(t, env, "breaker", "busybox", false)
		bad := registerTD(t, env, "breaker", "bad-image", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("breaker"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(good), DesiredCount: aws.Int32(3),
			DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "breaker", "web", 20*time.Second)
		up, err := env.ECS.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String("breaker"), Service: aws.String("web"), TaskDefinition: aws.String(bad)})
		if err != nil {
			t.Fatal(err)
		}
		badID := aws.ToString(up.Service.Deployments[0].Id)
		eventually(t, 20*time.Second, "rollback", func() bool {
			s := describe(t, env, "breaker", "web")
			return hasEvent(s, "(deployment "+badID+") deployment failed: tasks failed to start.") && aws.ToString(s.TaskDefinition) == good
		})
		waitStable(t, env, "breaker", "web", 20*time.Second)
		s := describe(t, env, "breaker", "web")
		if aws.ToString(s.Deployments[0].TaskDefinition) != good || s.RunningCount != 3 {
			t.Fatalf("not back on the good revision: %+v", s.Deployments)
		}
		list, err := env.ECS.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{Cluster: aws.String("breaker"), Service: aws.String("web")})
		if err != nil || len(list.ServiceDeployments) != 2 || list.ServiceDeployments[0].Status != types.ServiceDeploymentStatusRollbackSuccessful {
			t.Fatalf("service deployments: %v %+v", err, list)
		}
	})

	t.Run("ReplacesKilledAndUnhealthyTasks", func(t *testing.T) {
		createCluster(t, env, "heal")
		f := newSimFleet(t, env, "heal")
		f.addInstance("i0", "us-east-1a", 4096, 8192)
		td := registerTD(t, env, "heal", "busybox", true)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("heal"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "heal", "web", 20*time.Second)
		tasks := f.tasks("web")
		f.killTask(tasks[0].ID)
		f.markUnhealthy(tasks[1].ID)
		eventually(t, 20*time.Second, "replacements", func() bool {
			n := 0
			for _, tk := range f.tasks("web") {
				if tk.LastStatus == "RUNNING" && tk.HealthStatus == "HEALTHY" && tk.ID != tasks[0].ID && tk.ID != tasks[1].ID {
					n++
				}
			}
			return n == 2
		})
		waitStable(t, env, "heal", "web", 20*time.Second)
		s := describe(t, env, "heal", "web")
		if !hasEvent(s, "(task "+tasks[1].ID+") failed container health checks.") {
			t.Fatalf("events %q", eventMessages(s, 10))
		}
	})

	t.Run("Daemon", func(t *testing.T) {
		createCluster(t, env, "daemon")
		f := newSimFleet(t, env, "daemon")
		f.addInstance("i0", "us-east-1a", 4096, 8192)
		f.addInstance("i1", "us-east-1b", 4096, 8192)
		td := registerTD(t, env, "daemon", "busybox", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("daemon"), ServiceName: aws.String("agent"),
			TaskDefinition: aws.String(td), SchedulingStrategy: types.SchedulingStrategyDaemon})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "daemon", "agent", 20*time.Second)
		if s := describe(t, env, "daemon", "agent"); s.DesiredCount != 2 || s.RunningCount != 2 {
			t.Fatalf("daemon: desired %d running %d", s.DesiredCount, s.RunningCount)
		}
		f.addInstance("i2", "us-east-1c", 4096, 8192)
		eventually(t, 20*time.Second, "a task on the new instance", func() bool {
			s := describe(t, env, "daemon", "agent")
			return s.DesiredCount == 3 && s.RunningCount == 3
		})
		per := map[string]int{}
		for _, tk := range f.tasks("agent") {
			if tk.LastStatus != "STOPPED" {
				per[tk.InstanceID]++
			}
		}
		if len(per) != 3 || per["i0"] != 1 || per["i1"] != 1 || per["i2"] != 1 {
			t.Fatalf("one task per instance: %v", per)
		}
	})

	t.Run("DrainingInstance", func(t *testing.T) {
		createCluster(t, env, "drain")
		f := newSimFleet(t, env, "drain")
		f.addInstance("i0", "us-east-1a", 4096, 8192)
		f.addInstance("i1", "us-east-1b", 4096, 8192)
		td := registerTD(t, env, "drain", "busybox", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("drain"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(4)})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "drain", "web", 20*time.Second)
		f.setInstanceStatus("i0", "DRAINING")
		eventually(t, 20*time.Second, "tasks to leave the draining instance", func() bool {
			on0, running := 0, 0
			for _, tk := range f.tasks("web") {
				if tk.LastStatus == "STOPPED" {
					continue
				}
				if tk.InstanceID == "i0" {
					on0++
				}
				if tk.LastStatus == "RUNNING" {
					running++
				}
			}
			return on0 == 0 && running == 4
		})
		waitStable(t, env, "drain", "web", 10*time.Second)
	})

	t.Run("DeleteForce", func(t *testing.T) {
		createCluster(t, env, "del")
		f := newSimFleet(t, env, "del")
		f.addInstance("i0", "us-east-1a", 4096, 8192)
		td := registerTD(t, env, "del", "busybox", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("del"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		waitStable(t, env, "del", "web", 20*time.Second)
		if _, err := env.ECS.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("del"), Service: aws.String("web")}); err == nil ||
			!strings.Contains(err.Error(), "The service cannot be stopped while it is scaled above 0.") {
			t.Fatalf("delete without force: %v", err)
		}
		out, err := env.ECS.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String("del"), Service: aws.String("web"), Force: aws.Bool(true)})
		if err != nil || aws.ToString(out.Service.Status) != "DRAINING" {
			t.Fatalf("delete --force: %v %+v", err, out)
		}
		w := awsecs.NewServicesInactiveWaiter(env.ECS, func(o *awsecs.ServicesInactiveWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
		})
		if err := w.Wait(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String("del"), Services: []string{"web"}}, 20*time.Second); err != nil {
			t.Fatalf("services-inactive: %v", err)
		}
		for _, tk := range f.tasks("web") {
			if tk.LastStatus != "STOPPED" {
				t.Fatalf("task %s %s after delete", tk.ID, tk.LastStatus)
			}
		}
		if s := describe(t, env, "del", "web"); aws.ToString(s.Status) != "INACTIVE" {
			t.Fatalf("status %s", aws.ToString(s.Status))
		}
	})

	t.Run("PlacementFailureEvent", func(t *testing.T) {
		createCluster(t, env, "full")
		newSimFleet(t, env, "full").addInstance("i0", "us-east-1a", 256, 256)
		td := registerTD(t, env, "full", "busybox", false)
		_, err := env.ECS.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("full"), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "an unable-to-place event", func() bool {
			return hasEvent(describe(t, env, "full", "web"), "(service web) was unable to place a task because no container instance met all of its requirements.")
		})
	})
}
