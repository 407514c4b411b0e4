package apiserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// capPoolInstance stores an instance of the scope's Fargate pool (API-style:
// no agent, so stops complete at once).
func capPoolInstance(t *testing.T, env *testenv.Env, id string, cpu, mem int32) {
	t.Helper()
	ci := &resource.ContainerInstance{Scope: taskScope, Cluster: resource.FargatePool, ID: id, Fargate: true}
	ci.ContainerInstanceArn = taskScope.ContainerInstanceARN(resource.FargatePool, id)
	ci.Status = resource.InstanceActive
	ci.RegisteredAt = ecs.NewTime(time.Now())
	ci.RegisteredResources = []ecs.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: cpu},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: mem},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: []string{}},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
	}
	ci.Attributes = []ecs.Attribute{{Name: "ecs.availability-zone", Value: "us-east-1b"}, {Name: "ecs.capability.task-eni"}}
	taskCommit(t, env, store.Put(taskScope.ContainerInstanceKey(resource.FargatePool, id), resource.Encode(ci)))
}

// capFargateDef registers family "fg": a 256/512 awsvpc definition for FARGATE.
func capFargateDef(t *testing.T, env *testenv.Env) {
	t.Helper()
	_, err := env.ECS.RegisterTaskDefinition(context.Background(), &sdkecs.RegisterTaskDefinitionInput{
		Family: aws.String("fg"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions:    []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true)}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

var capNet = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}

func capWaitTask(t *testing.T, env *testenv.Env, cluster, arn string, ok func(*resource.Task) bool) *resource.Task {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rec := taskRecord(t, env, arn)
		if ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: condition not met; last status %s desired %s instance %q stop %s", arn, rec.LastStatus, rec.DesiredStatus, rec.InstanceID, rec.StopCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunTaskFargate(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	_, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("fgc"),
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}})
	if err != nil {
		t.Fatal(err)
	}
	capFargateDef(t, env)
	run := func(in sdkecs.RunTaskInput) (*sdkecs.RunTaskOutput, error) {
		in.Cluster, in.TaskDefinition = aws.String("fgc"), aws.String("fg")
		if in.NetworkConfiguration == nil {
			in.NetworkConfiguration = capNet
		}
		return env.ECS.RunTask(ctx, &in)
	}

	// No pool agent yet: a clear error, not a task that waits forever.
	_, err = run(sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate})
	taskWantErr(t, err, "InvalidParameterException", "ecsd agent --fargate")

	capPoolInstance(t, env, "pool1", 1024, 2048)
	out, err := run(sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, PlatformVersion: aws.String("LATEST")})
	if err != nil {
		t.Fatal(err)
	}
	task := out.Tasks[0]
	if task.LaunchType != types.LaunchTypeFargate || aws.ToString(task.PlatformVersion) != "1.4.0" || aws.ToString(task.PlatformFamily) != "Linux" ||
		task.ContainerInstanceArn != nil || task.EphemeralStorage == nil || task.EphemeralStorage.SizeInGiB != 20 ||
		aws.ToString(task.LastStatus) != "PROVISIONING" || len(task.Attachments) != 1 || task.CapacityProviderName != nil {
		t.Fatalf("fargate task: %+v", task)
	}
	rec := taskRecord(t, env, aws.ToString(task.TaskArn))
	if rec.InstanceID != "pool1" || rec.InstanceCluster != resource.FargatePool {
		t.Fatalf("placed on %q in %q", rec.InstanceID, rec.InstanceCluster)
	}
	// The pool is nobody's container instance.
	li, err := env.ECS.ListContainerInstances(ctx, &sdkecs.ListContainerInstancesInput{Cluster: aws.String("fgc")})
	if err != nil || len(li.ContainerInstanceArns) != 0 {
		t.Fatalf("pool listed: %v %v", li, err)
	}

	for _, c := range []struct {
		name string
		in   sdkecs.RunTaskInput
		msg  string
	}{
		{"size not a Fargate pair", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, Overrides: &types.TaskOverride{Memory: aws.String("4096")}}, "No Fargate configuration exists"},
		{"platform version", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, PlatformVersion: aws.String("9.9.9")}, "platformVersion"},
		{"storage too small", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, Overrides: &types.TaskOverride{EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 10}}}, "ephemeralStorage"},
		{"storage too large", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, Overrides: &types.TaskOverride{EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 201}}}, "ephemeralStorage"},
		{"launch type and strategy", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}}, "Specifying both"},
		{"all weights zero", sdkecs.RunTaskInput{CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}}, "weight"},
		{"two bases", sdkecs.RunTaskInput{CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Base: 1, Weight: 1}}}, "base"},
		{"not associated", sdkecs.RunTaskInput{CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("other"), Weight: 1}}}, "not associated"},
		{"no network", sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{}}, "Network Configuration"},
	} {
		if _, err := run(c.in); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			taskWantErr(t, err, "InvalidParameterException", c.msg)
		}
	}
	// Fargate tasks may ask for a public IP (the usual CLI idiom).
	if _, err := run(sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{
		AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}, AssignPublicIp: types.AssignPublicIpEnabled}}}); err != nil {
		t.Fatalf("assignPublicIp ENABLED on Fargate: %v", err)
	}
	ok, err := run(sdkecs.RunTaskInput{LaunchType: types.LaunchTypeFargate, Overrides: &types.TaskOverride{Cpu: aws.String("512"), Memory: aws.String("1024"), EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 50}}})
	if err != nil || ok.Tasks[0].EphemeralStorage.SizeInGiB != 50 || aws.ToString(ok.Tasks[0].Cpu) != "512" {
		t.Fatalf("valid override: %v %+v", err, ok)
	}
}

func TestRunTaskStrategySplitAndWaiting(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	_, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("mix"),
		CapacityProviders:               []string{"FARGATE", "FARGATE_SPOT"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	capFargateDef(t, env)
	capPoolInstance(t, env, "big", 4096, 8192)

	// 1:3 over four copies: one on FARGATE, three on FARGATE_SPOT.
	out, err := env.ECS.RunTask(ctx, &sdkecs.RunTaskInput{Cluster: aws.String("mix"), TaskDefinition: aws.String("fg"), Count: aws.Int32(4), NetworkConfiguration: capNet,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, tk := range out.Tasks {
		counts[aws.ToString(tk.CapacityProviderName)]++
		if tk.LaunchType != types.LaunchTypeFargate {
			t.Errorf("launch type %s", tk.LaunchType)
		}
	}
	if counts["FARGATE"] != 1 || counts["FARGATE_SPOT"] != 3 {
		t.Fatalf("split %v", counts)
	}
	// No launch type, no strategy: the cluster's default.
	def, err := env.ECS.RunTask(ctx, &sdkecs.RunTaskInput{Cluster: aws.String("mix"), TaskDefinition: aws.String("fg"), NetworkConfiguration: capNet})
	if err != nil || aws.ToString(def.Tasks[0].CapacityProviderName) != "FARGATE_SPOT" {
		t.Fatalf("default strategy: %v %+v", err, def)
	}
	// The pool (4096/8192) now holds 5×256; fill it up with spot, then ask for on-demand.
	for i := 0; i < 11; i++ {
		if _, err := env.ECS.RunTask(ctx, &sdkecs.RunTaskInput{Cluster: aws.String("mix"), TaskDefinition: aws.String("fg"), NetworkConfiguration: capNet}); err != nil {
			t.Fatal(err)
		}
	}
	od, err := env.ECS.RunTask(ctx, &sdkecs.RunTaskInput{Cluster: aws.String("mix"), TaskDefinition: aws.String("fg"), NetworkConfiguration: capNet, LaunchType: types.LaunchTypeFargate})
	if err != nil || len(od.Tasks) != 1 || len(od.Failures) != 0 {
		t.Fatalf("on-demand when full: %v %+v", err, od)
	}
	arn := aws.ToString(od.Tasks[0].TaskArn)
	// It waits, a spot task is interrupted for it, and then it is placed.
	capWaitTask(t, env, "mix", arn, func(r *resource.Task) bool { return r.InstanceID == "big" })
	lt, err := env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("mix"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(lt.TaskArns) == 0 {
		t.Fatalf("no interrupted task: %v %v", lt, err)
	}
	dt, err := env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("mix"), Tasks: lt.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range dt.Tasks {
		if tk.StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(tk.StoppedReason) != "Your Spot Task was interrupted." || aws.ToString(tk.CapacityProviderName) != "FARGATE_SPOT" {
			t.Errorf("interrupted task: %s %s %s", tk.StopCode, aws.ToString(tk.StoppedReason), aws.ToString(tk.CapacityProviderName))
		}
	}
	if len(dt.Tasks) != 1 {
		t.Errorf("interrupted %d spot tasks for one 256/512 task; want 1", len(dt.Tasks))
	}
}
