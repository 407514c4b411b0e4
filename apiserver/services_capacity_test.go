package apiserver_test

import (
	"context"
	"encoding/json"
	"github.com/ecsd/ecsd/internal/signedpost"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
)

// capInterrupt calls the Spot interruption endpoint, signed like an API call.
func capInterrupt(t *testing.T, env *testenv.Env, cluster, task string) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"cluster": cluster, "task": task})
	status, b, err := signedpost.Do(context.Background(), signedpost.Request{URL: env.URL + apiserver.SpotInterruptionPath, Body: body,
		Credentials: aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return status, b
}

// capServiceTasks lists a service's tasks that are not STOPPED, by record.
func capServiceTasks(t *testing.T, env *testenv.Env, cluster, service string) []*resource.Task {
	t.Helper()
	var out []*resource.Task
	snap := env.CP.Cache.Snapshot()
	for _, desired := range []types.DesiredStatus{types.DesiredStatusRunning} {
		lt, err := env.ECS.ListTasks(context.Background(), &sdkecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service), DesiredStatus: desired})
		if err != nil {
			t.Fatal(err)
		}
		for _, arn := range lt.TaskArns {
			a, _ := resource.ParseARN(arn)
			if e, ok := snap.Get(taskScope.TaskKey(a.Parts[0], a.Parts[1])); ok {
				out = append(out, e.Obj.(*resource.Task))
			}
		}
	}
	return out
}

func capEventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServiceOnFargateSpot(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	_, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("spot"), CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}})
	if err != nil {
		t.Fatal(err)
	}
	capFargateDef(t, env)
	capPoolInstance(t, env, "p1", 1024, 2048) // room for four 256/512 tasks

	_, err = env.ECS.CreateService(ctx, &sdkecs.CreateServiceInput{Cluster: aws.String("spot"), ServiceName: aws.String("web"), TaskDefinition: aws.String("fg"),
		DesiredCount: aws.Int32(6), NetworkConfiguration: capNet,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ds, _ := env.ECS.DescribeServices(ctx, &sdkecs.DescribeServicesInput{Cluster: aws.String("spot"), Services: []string{"web"}})
		if t.Failed() && ds != nil && len(ds.Services) > 0 {
			for _, e := range ds.Services[0].Events {
				t.Logf("event: %s", aws.ToString(e.Message))
			}
			b, _ := json.Marshal(ds.Services[0].Deployments)
			t.Logf("deployments: %s", b)
		}
	}()
	// Four fit; two wait in PROVISIONING without an instance, not failed.
	capEventually(t, "4 placed, 2 waiting", func() bool {
		placed, waiting := 0, 0
		for _, tk := range capServiceTasks(t, env, "spot", "web") {
			switch {
			case tk.Waiting():
				waiting++
			case tk.InstanceID != "":
				placed++
			}
			if tk.CapacityProviderName != "FARGATE_SPOT" || tk.LaunchType != "FARGATE" || tk.NetworkConfiguration == nil {
				t.Fatalf("service task: provider %q launch %q network %v", tk.CapacityProviderName, tk.LaunchType, tk.NetworkConfiguration)
			}
		}
		return placed == 4 && waiting == 2
	})
	// The waiting tasks show in the metrics.
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `ecsd_tasks_waiting_for_capacity{account="123456789012",cluster="spot",region="us-east-1",target="FARGATE_SPOT"} 2`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	// Capacity arrives: the waiting tasks are placed.
	capPoolInstance(t, env, "p2", 1024, 2048)
	capEventually(t, "all 6 placed", func() bool {
		tasks := capServiceTasks(t, env, "spot", "web")
		for _, tk := range tasks {
			if tk.InstanceID == "" {
				return false
			}
		}
		return len(tasks) == 6
	})

	// Cluster statistics count them as Fargate's.
	dc, err := env.ECS.DescribeClusters(ctx, &sdkecs.DescribeClustersInput{Clusters: []string{"spot"}, Include: []types.ClusterField{types.ClusterFieldStatistics}})
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]string{}
	for _, kv := range dc.Clusters[0].Statistics {
		stats[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	if stats["activeFargateServiceCount"] != "1" || stats["pendingFargateTasksCount"] != "6" || stats["activeEC2ServiceCount"] != "0" {
		t.Errorf("statistics %v", stats)
	}
	// A Spot interruption: the task stops with SpotInterruption and the
	// service replaces it on FARGATE_SPOT.
	victim := capServiceTasks(t, env, "spot", "web")[0]
	code, body := capInterrupt(t, env, "spot", victim.TaskArn)
	if code != http.StatusOK {
		t.Fatalf("interrupt: %d %s", code, body)
	}
	d, err := env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("spot"), Tasks: []string{victim.TaskArn}})
	if err != nil || d.Tasks[0].StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(d.Tasks[0].StoppedReason) != "Your Spot Task was interrupted." {
		t.Fatalf("interrupted: %v %+v", err, d)
	}
	capEventually(t, "replacement on spot", func() bool {
		tasks := capServiceTasks(t, env, "spot", "web")
		for _, tk := range tasks {
			if tk.ID == victim.ID || tk.CapacityProviderName != "FARGATE_SPOT" {
				return false
			}
		}
		return len(tasks) == 6
	})
	// Only Spot tasks can be interrupted.
	if code, body := capInterrupt(t, env, "spot", "nope"); code != http.StatusBadRequest {
		t.Errorf("unknown task: %d %s", code, body)
	}

	// Changing the strategy needs a new deployment.
	_, err = env.ECS.UpdateService(ctx, &sdkecs.UpdateServiceInput{Cluster: aws.String("spot"), Service: aws.String("web"),
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}})
	taskWantErr(t, err, "InvalidParameterException", "force a new deployment")
	_, err = env.ECS.UpdateService(ctx, &sdkecs.UpdateServiceInput{Cluster: aws.String("spot"), Service: aws.String("web"), ForceNewDeployment: true,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	// A daemon cannot use a strategy.
	_, err = env.ECS.CreateService(ctx, &sdkecs.CreateServiceInput{Cluster: aws.String("spot"), ServiceName: aws.String("d"), TaskDefinition: aws.String("fg"),
		SchedulingStrategy: types.SchedulingStrategyDaemon, NetworkConfiguration: capNet,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}})
	taskWantErr(t, err, "InvalidParameterException", "DAEMON")
}

// What ECS Anywhere does not support is refused for EXTERNAL services.
func TestServiceExternalRefusals(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "ext")
	taskWebDef(t, env)
	capFargateDef(t, env) // awsvpc
	_, err := env.ECS.CreateService(ctx, &sdkecs.CreateServiceInput{Cluster: aws.String("ext"), ServiceName: aws.String("lb"), TaskDefinition: aws.String("web"),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeExternal,
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}})
	taskWantErr(t, err, "InvalidParameterException", "EXTERNAL instances cannot use load balancers")
	_, err = env.ECS.CreateService(ctx, &sdkecs.CreateServiceInput{Cluster: aws.String("ext"), ServiceName: aws.String("vpc"), TaskDefinition: aws.String("fg"),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeExternal, NetworkConfiguration: capNet})
	taskWantErr(t, err, "InvalidParameterException", "EXTERNAL instances do not support awsvpc")
	if _, err := env.ECS.CreateService(ctx, &sdkecs.CreateServiceInput{Cluster: aws.String("ext"), ServiceName: aws.String("ok"), TaskDefinition: aws.String("web"),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeExternal}); err != nil {
		t.Fatalf("a bridge EXTERNAL service: %v", err)
	}
}
