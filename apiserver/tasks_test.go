package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var taskScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

const taskARNPrefix = "arn:aws:ecs:us-east-1:123456789012:task/"

// taskInst describes a container instance written straight into the store (no
// agent exists in these tests).
type taskInst struct {
	cpu, mem int32
	ports    []string
	az       string
	agent    bool // registered by an agent (has a credential)
	alive    bool // the agent's heartbeat is recent
	external bool
	status   string
	attrs    []ecs.Attribute
}

func taskCommit(t *testing.T, env *testenv.Env, ops ...store.Op) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := env.CP.Store.Txn(ctx, ops...)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.CP.Cache.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// taskAddInstance stores an instance of cluster with id and returns its ARN.
func taskAddInstance(t *testing.T, env *testenv.Env, cluster, id string, o taskInst) string {
	t.Helper()
	if o.status == "" {
		o.status = resource.InstanceActive
	}
	if o.az == "" {
		o.az = "us-east-1a"
	}
	if o.ports == nil {
		o.ports = []string{"22", "2375", "2376", "51678", "51679"}
	}
	arn := taskScope.ContainerInstanceARN(cluster, id)
	ci := &resource.ContainerInstance{Scope: taskScope, Cluster: cluster, ID: id, External: o.external}
	ci.ContainerInstanceArn = arn
	ci.Status = o.status
	ci.RegisteredAt = ecs.NewTime(time.Now())
	ci.RegisteredResources = []ecs.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: o.cpu},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: o.mem},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: o.ports},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
	}
	ci.Attributes = append([]ecs.Attribute{
		{Name: "ecs.availability-zone", Value: o.az},
		{Name: "ecs.cpu-architecture", Value: "x86_64"},
		{Name: "ecs.capability.task-eni"},
		{Name: "com.amazonaws.ecs.capability.docker-remote-api.1.21"},
	}, o.attrs...)
	ops := []store.Op{store.Put(taskScope.ContainerInstanceKey(cluster, id), resource.Encode(ci))}
	if o.agent {
		ci.SecretHash = "0123456789abcdef"
		ops[0] = store.Put(taskScope.ContainerInstanceKey(cluster, id), resource.Encode(ci))
		p := &resource.Presence{LastHeartbeat: time.Now(), Connected: true}
		if !o.alive {
			p.LastHeartbeat = time.Now().Add(-time.Hour)
		}
		ops = append(ops, store.Put(taskScope.PresenceKey(cluster, id), resource.Encode(p)))
	}
	taskCommit(t, env, ops...)
	return arn
}

// taskUsed is what the planner charged to an instance.
func taskUsed(t *testing.T, env *testenv.Env, cluster, id string) resource.Usage {
	t.Helper()
	e, ok := env.CP.Cache.Snapshot().Get(taskScope.ContainerInstanceKey(cluster, id))
	if !ok {
		t.Fatalf("instance %s not stored", id)
	}
	return e.Obj.(*resource.ContainerInstance).Used
}

func taskRecord(t *testing.T, env *testenv.Env, arn string) *resource.Task {
	t.Helper()
	a, err := resource.ParseARN(arn)
	if err != nil || len(a.Parts) != 2 {
		t.Fatalf("task arn %q: %v", arn, err)
	}
	e, ok := env.CP.Cache.Snapshot().Get(taskScope.TaskKey(a.Parts[0], a.Parts[1]))
	if !ok {
		t.Fatalf("task %s not stored", arn)
	}
	return e.Obj.(*resource.Task)
}

func taskCluster(t *testing.T, env *testenv.Env, name string) {
	t.Helper()
	if _, err := env.ECS.CreateCluster(context.Background(), &sdkecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// taskWebDef registers family "web": one container "app" (cpu 128, 256 MiB,
// port 80 on static host port 8080) and returns its ARN.
func taskWebDef(t *testing.T, env *testenv.Env) string {
	t.Helper()
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), &sdkecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		Tags:   []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Cpu: 128, Memory: aws.Int32(256),
			Environment:  []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}, {Name: aws.String("B"), Value: aws.String("2")}},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// taskSmallDef registers family with one container of mem MiB and no ports.
func taskSmallDef(t *testing.T, env *testenv.Env, family string, cpu, mem int32) string {
	t.Helper()
	out, err := env.ECS.RegisterTaskDefinition(context.Background(), &sdkecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("busybox"), Cpu: cpu, Memory: aws.Int32(mem),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func taskRun(t *testing.T, env *testenv.Env, in *sdkecs.RunTaskInput) *sdkecs.RunTaskOutput {
	t.Helper()
	out, err := env.ECS.RunTask(context.Background(), in)
	if err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	return out
}

func taskWantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("got %s: %s; want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

func taskFailureReasons(fs []types.Failure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, aws.ToString(f.Reason))
	}
	return out
}

func TestRunTaskPlacesAndDescribes(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "prod")
	instARN := taskAddInstance(t, env, "prod", "i1", taskInst{cpu: 1024, mem: 2048})
	defARN := taskWebDef(t, env)

	out := taskRun(t, env, &sdkecs.RunTaskInput{
		Cluster: aws.String("prod"), TaskDefinition: aws.String("web"), StartedBy: aws.String("ci-job-7"),
		Tags:          []types.Tag{{Key: aws.String("run"), Value: aws.String("1")}},
		PropagateTags: types.PropagateTagsTaskDefinition, ReferenceId: aws.String("ref-1"),
		EnableExecuteCommand: true,
	})
	if len(out.Tasks) != 1 || len(out.Failures) != 0 {
		t.Fatalf("tasks %d failures %v", len(out.Tasks), taskFailureReasons(out.Failures))
	}
	tk := out.Tasks[0]
	arn := aws.ToString(tk.TaskArn)
	id := strings.TrimPrefix(arn, taskARNPrefix+"prod/")
	if !strings.HasPrefix(arn, taskARNPrefix+"prod/") || len(id) != 32 {
		t.Errorf("taskArn %s", arn)
	}
	checks := map[string][2]string{
		"clusterArn":           {aws.ToString(tk.ClusterArn), "arn:aws:ecs:us-east-1:123456789012:cluster/prod"},
		"taskDefinitionArn":    {aws.ToString(tk.TaskDefinitionArn), defARN},
		"containerInstanceArn": {aws.ToString(tk.ContainerInstanceArn), instARN},
		"lastStatus":           {aws.ToString(tk.LastStatus), "PENDING"},
		"desiredStatus":        {aws.ToString(tk.DesiredStatus), "RUNNING"},
		"cpu":                  {aws.ToString(tk.Cpu), "128"},
		"memory":               {aws.ToString(tk.Memory), "256"},
		"launchType":           {string(tk.LaunchType), "EC2"},
		"availabilityZone":     {aws.ToString(tk.AvailabilityZone), "us-east-1a"},
		"group":                {aws.ToString(tk.Group), "family:web"},
		"startedBy":            {aws.ToString(tk.StartedBy), "ci-job-7"},
		"healthStatus":         {string(tk.HealthStatus), "UNKNOWN"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if tk.Version != 1 || tk.CreatedAt == nil || !tk.EnableExecuteCommand {
		t.Errorf("version %d createdAt %v enableExecuteCommand %v", tk.Version, tk.CreatedAt, tk.EnableExecuteCommand)
	}
	if tk.Overrides == nil || len(tk.Overrides.ContainerOverrides) != 1 || aws.ToString(tk.Overrides.ContainerOverrides[0].Name) != "app" {
		t.Errorf("overrides %+v", tk.Overrides)
	}
	if len(tk.Containers) != 1 {
		t.Fatalf("containers %+v", tk.Containers)
	}
	ct := tk.Containers[0]
	if !strings.HasPrefix(aws.ToString(ct.ContainerArn), "arn:aws:ecs:us-east-1:123456789012:container/prod/"+id+"/") ||
		aws.ToString(ct.TaskArn) != arn || aws.ToString(ct.Name) != "app" || aws.ToString(ct.Image) != "busybox" ||
		aws.ToString(ct.LastStatus) != "PENDING" || aws.ToString(ct.Cpu) != "128" || aws.ToString(ct.Memory) != "256" || ct.NetworkInterfaces == nil {
		t.Errorf("container %+v", ct)
	}
	var tags []string
	for _, tg := range tk.Tags {
		tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	if !slices.Equal(tags, []string{"team=blue", "run=1"}) {
		t.Errorf("tags %v", tags)
	}
	if len(tk.Attributes) != 1 || aws.ToString(tk.Attributes[0].Value) != "x86_64" {
		t.Errorf("attributes %+v", tk.Attributes)
	}
	rec := taskRecord(t, env, arn)
	if rec.ReferenceID != "ref-1" || rec.Definition.Family != "web" || rec.InstanceID != "i1" {
		t.Errorf("record: referenceId %q family %q instance %q", rec.ReferenceID, rec.Definition.Family, rec.InstanceID)
	}
	if u := taskUsed(t, env, "prod", "i1"); u.CPU != 128 || u.Memory != 256 || !slices.Equal(u.TCPPorts, []int32{8080}) {
		t.Errorf("instance used %+v", u)
	}

	t.Run("a second copy finds host port 8080 taken", func(t *testing.T) {
		out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web:1")})
		if len(out.Tasks) != 0 || len(out.Failures) != 1 {
			t.Fatalf("tasks %d failures %+v", len(out.Tasks), out.Failures)
		}
		if f := out.Failures[0]; aws.ToString(f.Reason) != "RESOURCE:PORTS" || aws.ToString(f.Arn) != instARN {
			t.Errorf("failure %s %s", aws.ToString(f.Arn), aws.ToString(f.Reason))
		}
	})

	t.Run("cluster counts and deletion", func(t *testing.T) {
		d, err := env.ECS.DescribeClusters(ctx, &sdkecs.DescribeClustersInput{Clusters: []string{"prod"}})
		if err != nil {
			t.Fatal(err)
		}
		if c := d.Clusters[0]; c.PendingTasksCount != 1 || c.RunningTasksCount != 0 {
			t.Errorf("pending %d running %d", c.PendingTasksCount, c.RunningTasksCount)
		}
		// Remove the instance so only the task holds the cluster.
		taskCommit(t, env, store.Delete(taskScope.ContainerInstanceKey("prod", "i1"), store.Any))
		_, err = env.ECS.DeleteCluster(ctx, &sdkecs.DeleteClusterInput{Cluster: aws.String("prod")})
		taskWantErr(t, err, "ClusterContainsTasksException", "Tasks")
	})

	t.Run("describe and the default cluster", func(t *testing.T) {
		d, err := env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{id, arn, "nope"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Tasks) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" ||
			aws.ToString(d.Failures[0].Arn) != taskARNPrefix+"prod/nope" {
			t.Fatalf("tasks %d failures %+v", len(d.Tasks), d.Failures)
		}
		if d.Tasks[0].Tags != nil {
			t.Errorf("tags without include=TAGS: %v", d.Tasks[0].Tags)
		}
		d, err = env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{arn}, Include: []types.TaskField{types.TaskFieldTags}})
		if err != nil || len(d.Tasks[0].Tags) != 2 {
			t.Fatalf("with TAGS: %v %+v", err, d)
		}
		// The ARN of another cluster does not name a task of this one.
		_, err = env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Tasks: []string{arn}})
		taskWantErr(t, err, "ClusterNotFoundException", "")
		_, err = env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{}})
		taskWantErr(t, err, "InvalidParameterException", "Tasks cannot be empty")
	})
}

func TestRunTaskPlacementFailures(t *testing.T) {
	env := testenv.Start(t)
	taskSmallDef(t, env, "big", 0, 4096)
	taskSmallDef(t, env, "cpu", 4096, 64)
	taskSmallDef(t, env, "small", 0, 64)

	run := func(cluster, family string) *sdkecs.RunTaskOutput {
		t.Helper()
		return taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(2)})
	}

	t.Run("no instances", func(t *testing.T) {
		// RunTask creates the default cluster, then finds nothing to run on.
		_, err := env.ECS.RunTask(context.Background(), &sdkecs.RunTaskInput{TaskDefinition: aws.String("small")})
		taskWantErr(t, err, "InvalidParameterException", "No Container Instances were found in your cluster.")
		if _, err := env.ECS.DescribeClusters(context.Background(), &sdkecs.DescribeClustersInput{}); err != nil {
			t.Fatal(err)
		}
	})

	taskCluster(t, env, "c")
	a1 := taskAddInstance(t, env, "c", "a1", taskInst{cpu: 1024, mem: 1024})
	a2 := taskAddInstance(t, env, "c", "a2", taskInst{cpu: 1024, mem: 1024, az: "us-east-1b"})

	t.Run("memory: one failure per instance", func(t *testing.T) {
		out := run("c", "big")
		if len(out.Tasks) != 0 || len(out.Failures) != 2 {
			t.Fatalf("tasks %d failures %+v", len(out.Tasks), out.Failures)
		}
		var arns []string
		for _, f := range out.Failures {
			arns = append(arns, aws.ToString(f.Arn))
			if aws.ToString(f.Reason) != "RESOURCE:MEMORY" {
				t.Errorf("reason %s", aws.ToString(f.Reason))
			}
		}
		slices.Sort(arns)
		if !slices.Equal(arns, []string{a1, a2}) {
			t.Errorf("failure arns %v", arns)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		out := run("c", "cpu")
		if len(out.Tasks) != 0 || len(out.Failures) == 0 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:CPU" {
			t.Fatalf("failures %v", taskFailureReasons(out.Failures))
		}
	})
	t.Run("disconnected agents", func(t *testing.T) {
		taskCluster(t, env, "dark")
		taskAddInstance(t, env, "dark", "d1", taskInst{cpu: 1024, mem: 1024, agent: true, alive: false})
		out := run("dark", "small")
		if len(out.Tasks) != 0 || len(out.Failures) == 0 || aws.ToString(out.Failures[0].Reason) != "AGENT" {
			t.Fatalf("failures %v", taskFailureReasons(out.Failures))
		}
		// A live agent takes it.
		taskAddInstance(t, env, "dark", "d2", taskInst{cpu: 1024, mem: 1024, agent: true, alive: true})
		out = run("dark", "small")
		if len(out.Tasks) != 2 {
			t.Fatalf("tasks %d failures %v", len(out.Tasks), taskFailureReasons(out.Failures))
		}
		for _, tk := range out.Tasks {
			if !strings.HasSuffix(aws.ToString(tk.ContainerInstanceArn), "/d2") {
				t.Errorf("placed on %s", aws.ToString(tk.ContainerInstanceArn))
			}
		}
	})
	t.Run("partial placement", func(t *testing.T) {
		taskCluster(t, env, "tight")
		taskAddInstance(t, env, "tight", "t1", taskInst{cpu: 1024, mem: 100})
		out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("tight"), TaskDefinition: aws.String("small"), Count: aws.Int32(3)})
		if len(out.Tasks) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
			t.Fatalf("tasks %d failures %v", len(out.Tasks), taskFailureReasons(out.Failures))
		}
	})
	t.Run("EXTERNAL tasks go only to external instances", func(t *testing.T) {
		taskCluster(t, env, "mixed")
		taskAddInstance(t, env, "mixed", "ec2", taskInst{cpu: 1024, mem: 1024})
		taskAddInstance(t, env, "mixed", "onprem", taskInst{cpu: 1024, mem: 1024, external: true})
		out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("mixed"), TaskDefinition: aws.String("small"), Count: aws.Int32(3), LaunchType: types.LaunchTypeExternal})
		if len(out.Tasks) != 3 {
			t.Fatalf("tasks %d failures %v", len(out.Tasks), taskFailureReasons(out.Failures))
		}
		for _, tk := range out.Tasks {
			if !strings.HasSuffix(aws.ToString(tk.ContainerInstanceArn), "/onprem") || tk.LaunchType != types.LaunchTypeExternal {
				t.Errorf("placed on %s as %s", aws.ToString(tk.ContainerInstanceArn), tk.LaunchType)
			}
		}
	})
}

// TestRunTaskConcurrentNeverOvercommits runs 20 RunTask calls at once onto an
// instance with room for exactly 10 copies.
func TestRunTaskConcurrentNeverOvercommits(t *testing.T) {
	env := testenv.Start(t)
	taskCluster(t, env, "race")
	taskAddInstance(t, env, "race", "only", taskInst{cpu: 10240, mem: 1280})
	taskSmallDef(t, env, "unit", 10, 128)

	var wg sync.WaitGroup
	var mu sync.Mutex
	placed, failed := 0, 0
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := env.ECS.RunTask(context.Background(), &sdkecs.RunTaskInput{Cluster: aws.String("race"), TaskDefinition: aws.String("unit")})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			placed += len(out.Tasks)
			failed += len(out.Failures)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("RunTask: %v", err)
	}
	if placed != 10 || failed != 10 {
		t.Fatalf("placed %d, failed %d; want 10 and 10", placed, failed)
	}
	if u := taskUsed(t, env, "race", "only"); u.Memory != 1280 || u.CPU != 100 {
		t.Errorf("instance used %+v", u)
	}
	list, err := env.ECS.ListTasks(context.Background(), &sdkecs.ListTasksInput{Cluster: aws.String("race")})
	if err != nil || len(list.TaskArns) != 10 {
		t.Fatalf("listed %d tasks (%v)", len(list.TaskArns), err)
	}
}

func TestRunTaskValidation(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "v")
	taskAddInstance(t, env, "v", "i1", taskInst{cpu: 4096, mem: 4096})
	taskWebDef(t, env)
	awsvpc, err := env.ECS.RegisterTaskDefinition(ctx, &sdkecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("busybox"), Memory: aws.Int32(64)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	old := taskSmallDef(t, env, "old", 0, 64)
	if _, err := env.ECS.DeregisterTaskDefinition(ctx, &sdkecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	vpcCfg := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-abc"}}}

	cases := []struct {
		name      string
		in        sdkecs.RunTaskInput
		code, msg string
	}{
		{"count 0", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(0)}, "InvalidParameterException", "count"},
		{"count 11", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(11)}, "InvalidParameterException", "count"},
		{"unknown definition", sdkecs.RunTaskInput{TaskDefinition: aws.String("nope")}, "ClientException", "TaskDefinition not found"},
		{"inactive revision", sdkecs.RunTaskInput{TaskDefinition: aws.String(old)}, "InvalidParameterException", "TaskDefinition is inactive"},
		{"override of an unknown container", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("ghost")}}}}, "InvalidParameterException", "ghost"},
		{"override without a name", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Command: []string{"x"}}}}}, "InvalidParameterException", "name is required"},
		{"reservation above memory", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), MemoryReservation: aws.Int32(512)}}}}, "InvalidParameterException", "memoryReservation"},
		{"bad task cpu override", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), Overrides: &types.TaskOverride{Cpu: aws.String("lots")}}, "InvalidParameterException", "overrides.cpu"},
		{"fargate on an EC2-only definition", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeFargate}, "InvalidParameterException", "does not support launch_type FARGATE"},
		{"launch type and strategy", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeEc2,
			CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("cp")}}}, "InvalidParameterException", "capacity provider strategy"},
		{"awsvpc without network configuration", sdkecs.RunTaskInput{TaskDefinition: aws.String("vpc")}, "InvalidParameterException", "Network Configuration must be provided"},
		{"awsvpc without subnets", sdkecs.RunTaskInput{TaskDefinition: aws.String("vpc"),
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{}}}}, "InvalidParameterException", "subnets"},
		{"bridge with network configuration", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), NetworkConfiguration: vpcCfg}, "InvalidParameterException", "Network Configuration is not valid"},
		{"awsvpc on EXTERNAL", sdkecs.RunTaskInput{TaskDefinition: aws.String("vpc"), NetworkConfiguration: vpcCfg, LaunchType: types.LaunchTypeExternal}, "InvalidParameterException", "EXTERNAL instances do not support awsvpc"},
		{"startedBy too long", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), StartedBy: aws.String(strings.Repeat("x", 129))}, "InvalidParameterException", "startedBy"},
		{"propagate SERVICE", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), PropagateTags: types.PropagateTagsService}, "InvalidParameterException", "propagateTags"},
		{"reserved tag", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}}, "InvalidParameterException", "aws:"},
		{"bad strategy", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}}, "InvalidParameterException", "placementStrategy"},
		{"bad constraint", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.az ==")}}}, "InvalidParameterException", "placementConstraints"},
		{"client token with a space", sdkecs.RunTaskInput{TaskDefinition: aws.String("web"), ClientToken: aws.String("a b")}, "InvalidParameterException", "clientToken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Cluster = aws.String("v")
			_, err := env.ECS.RunTask(ctx, &in)
			taskWantErr(t, err, tc.code, tc.msg)
		})
	}
	t.Run("unknown cluster", func(t *testing.T) {
		_, err := env.ECS.RunTask(ctx, &sdkecs.RunTaskInput{Cluster: aws.String("ghost"), TaskDefinition: aws.String("web")})
		taskWantErr(t, err, "ClusterNotFoundException", "")
	})
	if u := taskUsed(t, env, "v", "i1"); u.CPU != 0 || u.Memory != 0 {
		t.Errorf("a refused call charged the instance: %+v", u)
	}

	t.Run("awsvpc task starts PROVISIONING with its ENI attachment", func(t *testing.T) {
		out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("v"), TaskDefinition: awsvpc.TaskDefinition.TaskDefinitionArn, NetworkConfiguration: vpcCfg})
		if len(out.Tasks) != 1 {
			t.Fatalf("failures %v", taskFailureReasons(out.Failures))
		}
		tk := out.Tasks[0]
		if aws.ToString(tk.LastStatus) != "PROVISIONING" || len(tk.Attachments) != 1 {
			t.Fatalf("lastStatus %s attachments %+v", aws.ToString(tk.LastStatus), tk.Attachments)
		}
		a := tk.Attachments[0]
		if aws.ToString(a.Type) != "ElasticNetworkInterface" || aws.ToString(a.Status) != "PRECREATED" ||
			len(a.Details) != 1 || aws.ToString(a.Details[0].Name) != "subnetId" || aws.ToString(a.Details[0].Value) != "subnet-abc" {
			t.Errorf("attachment %+v", a)
		}
		if rec := taskRecord(t, env, aws.ToString(tk.TaskArn)); rec.NetworkConfiguration == nil || rec.Reserved.TCPPorts != nil {
			t.Errorf("record network %+v reserved %+v", rec.NetworkConfiguration, rec.Reserved)
		}
	})
}

func TestRunTaskOverrides(t *testing.T) {
	env := testenv.Start(t)
	taskCluster(t, env, "o")
	taskAddInstance(t, env, "o", "i1", taskInst{cpu: 4096, mem: 4096})
	taskWebDef(t, env)
	out := taskRun(t, env, &sdkecs.RunTaskInput{
		Cluster: aws.String("o"), TaskDefinition: aws.String("web"), Group: aws.String("batch"),
		Overrides: &types.TaskOverride{
			TaskRoleArn: aws.String("arn:aws:iam::123456789012:role/task"), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/exec"),
			ContainerOverrides: []types.ContainerOverride{{
				Name: aws.String("app"), Command: []string{"sh", "-c", "echo hi"}, Cpu: aws.Int32(256), Memory: aws.Int32(512),
				Environment: []types.KeyValuePair{{Name: aws.String("B"), Value: aws.String("20")}, {Name: aws.String("C"), Value: aws.String("3")}},
			}},
		},
	})
	if len(out.Tasks) != 1 {
		t.Fatalf("failures %v", taskFailureReasons(out.Failures))
	}
	tk := out.Tasks[0]
	if aws.ToString(tk.Group) != "batch" || aws.ToString(tk.Cpu) != "256" || aws.ToString(tk.Memory) != "512" {
		t.Errorf("group %s cpu %s memory %s", aws.ToString(tk.Group), aws.ToString(tk.Cpu), aws.ToString(tk.Memory))
	}
	if c := tk.Containers[0]; aws.ToString(c.Cpu) != "256" || aws.ToString(c.Memory) != "512" {
		t.Errorf("container cpu %s memory %s", aws.ToString(c.Cpu), aws.ToString(c.Memory))
	}
	if o := tk.Overrides; aws.ToString(o.TaskRoleArn) != "arn:aws:iam::123456789012:role/task" || len(o.ContainerOverrides) != 1 ||
		!slices.Equal(o.ContainerOverrides[0].Command, []string{"sh", "-c", "echo hi"}) {
		t.Errorf("overrides %+v", o)
	}
	rec := taskRecord(t, env, aws.ToString(tk.TaskArn))
	eff := rec.EffectiveContainers()[0]
	var env2 []string
	for _, kv := range eff.Environment {
		env2 = append(env2, kv.Name+"="+kv.Value)
	}
	if !slices.Equal(env2, []string{"A=1", "B=20", "C=3"}) || !slices.Equal(eff.Command, []string{"sh", "-c", "echo hi"}) {
		t.Errorf("effective environment %v command %v", env2, eff.Command)
	}
	if rec.Definition.ContainerDefinitions[0].Command != nil {
		t.Errorf("the stored definition was changed: %v", rec.Definition.ContainerDefinitions[0].Command)
	}
	if u := taskUsed(t, env, "o", "i1"); u.CPU != 256 || u.Memory != 512 {
		t.Errorf("charged %+v; the overrides decide the size", u)
	}
}

func TestRunTaskClientToken(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "idem")
	taskAddInstance(t, env, "idem", "i1", taskInst{cpu: 4096, mem: 4096})
	taskSmallDef(t, env, "job", 0, 64)
	in := &sdkecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("job"), Count: aws.Int32(2), ClientToken: aws.String("tok/1")}
	first := taskRun(t, env, in)
	again := taskRun(t, env, in)
	if len(first.Tasks) != 2 || len(again.Tasks) != 2 {
		t.Fatalf("tasks %d then %d", len(first.Tasks), len(again.Tasks))
	}
	for i := range first.Tasks {
		if aws.ToString(first.Tasks[i].TaskArn) != aws.ToString(again.Tasks[i].TaskArn) {
			t.Errorf("retry answered %s, first %s", aws.ToString(again.Tasks[i].TaskArn), aws.ToString(first.Tasks[i].TaskArn))
		}
	}
	list, _ := env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("idem")})
	if len(list.TaskArns) != 2 {
		t.Errorf("%d tasks exist; a retry must not start more", len(list.TaskArns))
	}
	other := *in
	other.StartedBy = aws.String("someone-else")
	_, err := env.ECS.RunTask(ctx, &other)
	taskWantErr(t, err, "ConflictException", aws.ToString(first.Tasks[0].TaskArn))

	// The same token in another cluster is another request.
	taskCluster(t, env, "idem2")
	taskAddInstance(t, env, "idem2", "i2", taskInst{cpu: 4096, mem: 4096})
	in2 := *in
	in2.Cluster = aws.String("idem2")
	if out := taskRun(t, env, &in2); len(out.Tasks) != 2 || aws.ToString(out.Tasks[0].TaskArn) == aws.ToString(first.Tasks[0].TaskArn) {
		t.Errorf("other cluster: %+v", out.Tasks)
	}

	// Concurrent retries of one request start it once.
	in3 := &sdkecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("job"), ClientToken: aws.String("racing")}
	var wg sync.WaitGroup
	arns := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := env.ECS.RunTask(ctx, in3)
			if err != nil {
				t.Errorf("RunTask: %v", err)
				return
			}
			arns <- aws.ToString(out.Tasks[0].TaskArn)
		}()
	}
	wg.Wait()
	close(arns)
	distinct := map[string]bool{}
	for a := range arns {
		distinct[a] = true
	}
	if len(distinct) != 1 {
		t.Errorf("concurrent retries started %d tasks", len(distinct))
	}
}

func TestStartTask(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "s")
	a := taskAddInstance(t, env, "s", "a", taskInst{cpu: 1024, mem: 1024})
	b := taskAddInstance(t, env, "s", "b", taskInst{cpu: 1024, mem: 100})
	taskSmallDef(t, env, "one", 0, 256)
	out, err := env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{
		Cluster: aws.String("s"), TaskDefinition: aws.String("one"), StartedBy: aws.String("me"),
		ContainerInstances: []string{"a", b, "ghost", a},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 2 {
		t.Fatalf("tasks %d failures %+v", len(out.Tasks), out.Failures)
	}
	for _, tk := range out.Tasks {
		if aws.ToString(tk.ContainerInstanceArn) != a || aws.ToString(tk.StartedBy) != "me" || aws.ToString(tk.LastStatus) != "PENDING" {
			t.Errorf("task on %s startedBy %s", aws.ToString(tk.ContainerInstanceArn), aws.ToString(tk.StartedBy))
		}
	}
	got := map[string]string{}
	for _, f := range out.Failures {
		got[aws.ToString(f.Arn)] = aws.ToString(f.Reason)
	}
	want := map[string]string{b: "RESOURCE:MEMORY", taskScope.ContainerInstanceARN("s", "ghost"): "MISSING"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("failures %v, want %v", got, want)
	}
	ext := taskAddInstance(t, env, "s", "onprem", taskInst{cpu: 1024, mem: 1024, external: true})
	out, err = env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{Cluster: aws.String("s"), TaskDefinition: aws.String("one"), ContainerInstances: []string{ext}})
	if err != nil || len(out.Tasks) != 1 || out.Tasks[0].LaunchType != types.LaunchTypeExternal {
		t.Fatalf("external: %v %+v", err, out)
	}
	_, err = env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{Cluster: aws.String("s"), TaskDefinition: aws.String("one"), ContainerInstances: []string{}})
	taskWantErr(t, err, "InvalidParameterException", "containerInstances")
}

func TestStopTask(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "st")
	taskAddInstance(t, env, "st", "api", taskInst{cpu: 1024, mem: 1024})
	taskAddInstance(t, env, "st", "agent", taskInst{cpu: 1024, mem: 1024, agent: true, alive: true})
	taskSmallDef(t, env, "job", 0, 256)
	start := func(inst string) string {
		t.Helper()
		out, err := env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{Cluster: aws.String("st"), TaskDefinition: aws.String("job"), ContainerInstances: []string{inst}})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("start on %s: %v %+v", inst, err, out)
		}
		return aws.ToString(out.Tasks[0].TaskArn)
	}

	t.Run("a task on an instance without an agent stops at once", func(t *testing.T) {
		arn := start("api")
		if u := taskUsed(t, env, "st", "api"); u.Memory != 256 {
			t.Fatalf("used %+v", u)
		}
		out, err := env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("st"), Task: aws.String(arn), Reason: aws.String("done here")})
		if err != nil {
			t.Fatal(err)
		}
		tk := out.Task
		if aws.ToString(tk.LastStatus) != "STOPPED" || aws.ToString(tk.DesiredStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeUserInitiated ||
			aws.ToString(tk.StoppedReason) != "done here" || tk.StoppedAt == nil || tk.StoppingAt == nil || tk.ExecutionStoppedAt == nil || tk.Version != 2 {
			t.Errorf("stopped task %+v", tk)
		}
		if aws.ToString(tk.Containers[0].LastStatus) != "STOPPED" {
			t.Errorf("container %s", aws.ToString(tk.Containers[0].LastStatus))
		}
		if u := taskUsed(t, env, "st", "api"); u.Memory != 0 || u.CPU != 0 {
			t.Errorf("resources not released: %+v", u)
		}
		again, err := env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("st"), Task: aws.String(arn), Reason: aws.String("again")})
		if err != nil || aws.ToString(again.Task.StoppedReason) != "done here" || again.Task.Version != 2 {
			t.Errorf("second stop: %v %+v", err, again)
		}
	})
	t.Run("a task with an agent waits for it", func(t *testing.T) {
		arn := start("agent")
		id := arn[strings.LastIndex(arn, "/")+1:]
		out, err := env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("st"), Task: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		tk := out.Task
		if aws.ToString(tk.LastStatus) != "PENDING" || aws.ToString(tk.DesiredStatus) != "STOPPED" ||
			aws.ToString(tk.StoppedReason) != "Task stopped by user" || tk.StoppedAt != nil {
			t.Errorf("task %s/%s reason %q", aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), aws.ToString(tk.StoppedReason))
		}
		if u := taskUsed(t, env, "st", "agent"); u.Memory != 256 {
			t.Errorf("released before the agent stopped it: %+v", u)
		}
		// The agent reports it stopped.
		if _, err := env.ECS.SubmitTaskStateChange(ctx, &sdkecs.SubmitTaskStateChangeInput{Cluster: aws.String("st"), Task: aws.String(arn), Status: aws.String("STOPPED")}); err != nil {
			t.Fatal(err)
		}
		if u := taskUsed(t, env, "st", "agent"); u.Memory != 0 {
			t.Errorf("not released after STOPPED: %+v", u)
		}
		d, _ := env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("st"), Tasks: []string{arn}})
		if tk := d.Tasks[0]; aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeUserInitiated {
			t.Errorf("after report: %s %s", aws.ToString(tk.LastStatus), tk.StopCode)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("st"), Task: aws.String("0123456789abcdef0123456789abcdef")})
		taskWantErr(t, err, "InvalidParameterException", "The referenced task was not found.")
		_, err = env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("st"), Task: aws.String("x"), Reason: aws.String(strings.Repeat("r", 256))})
		taskWantErr(t, err, "InvalidParameterException", "reason")
	})
}
