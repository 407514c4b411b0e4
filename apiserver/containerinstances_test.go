package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var ciScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

func ciWant(t *testing.T, err error, code string, parts ...string) {
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
			t.Fatalf("%s message %q does not mention %q", code, ae.ErrorMessage(), p)
		}
	}
}

func ciRegister(t *testing.T, env *testenv.Env, in *awsecs.RegisterContainerInstanceInput) types.ContainerInstance {
	t.Helper()
	out, err := env.ECS.RegisterContainerInstance(context.Background(), in)
	if err != nil {
		t.Fatalf("RegisterContainerInstance: %v", err)
	}
	return *out.ContainerInstance
}

func ciDescribe(t *testing.T, env *testenv.Env, cluster string, include []types.ContainerInstanceField, refs ...string) *awsecs.DescribeContainerInstancesOutput {
	t.Helper()
	out, err := env.ECS.DescribeContainerInstances(context.Background(), &awsecs.DescribeContainerInstancesInput{
		Cluster: aws.String(cluster), ContainerInstances: refs, Include: include})
	if err != nil {
		t.Fatalf("DescribeContainerInstances: %v", err)
	}
	return out
}

func ciResource(rs []types.Resource, name string) (types.Resource, bool) {
	for _, r := range rs {
		if aws.ToString(r.Name) == name {
			return r, true
		}
	}
	return types.Resource{}, false
}

func ciAttr(as []types.Attribute, name string) (string, bool) {
	for _, a := range as {
		if aws.ToString(a.Name) == name {
			return aws.ToString(a.Value), true
		}
	}
	return "", false
}

func ciListAll(t *testing.T, env *testenv.Env, in awsecs.ListContainerInstancesInput) []string {
	t.Helper()
	var out []string
	for {
		page, err := env.ECS.ListContainerInstances(context.Background(), &in)
		if err != nil {
			t.Fatalf("ListContainerInstances: %v", err)
		}
		out = append(out, page.ContainerInstanceArns...)
		if page.NextToken == nil {
			return out
		}
		in.NextToken = page.NextToken
	}
}

// ciIDOf is the id part of a container instance ARN.
func ciIDOf(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// ciPutRecord writes a record straight into the store, as the planner or the
// task path would (the instance API never writes tasks or usage).
func ciPutRecord(t *testing.T, env *testenv.Env, key string, fn func(cur any) any) {
	t.Helper()
	ctx := context.Background()
	e, ok := env.CP.Cache.Snapshot().Get(key)
	var op store.Op
	if ok {
		op = store.Update(key, resource.Encode(fn(e.Obj)), e.Rev)
	} else {
		op = store.Create(key, resource.Encode(fn(nil)))
	}
	rev, err := env.CP.Store.Txn(ctx, op)
	if err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
	if err := env.CP.Cache.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

func TestContainerInstanceAPI(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cl := env.ECS

	t.Run("defaults", func(t *testing.T) {
		env.Reset(t)
		ci := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{})
		if !regexp.MustCompile(`^arn:aws:ecs:us-east-1:123456789012:container-instance/default/[0-9a-f]{32}$`).MatchString(aws.ToString(ci.ContainerInstanceArn)) {
			t.Fatalf("arn %q", aws.ToString(ci.ContainerInstanceArn))
		}
		if !regexp.MustCompile(`^i-[0-9a-f]{17}$`).MatchString(aws.ToString(ci.Ec2InstanceId)) {
			t.Fatalf("ec2InstanceId %q", aws.ToString(ci.Ec2InstanceId))
		}
		if aws.ToString(ci.Status) != "ACTIVE" || !ci.AgentConnected || ci.RegisteredAt == nil {
			t.Fatalf("status %q connected %v registeredAt %v", aws.ToString(ci.Status), ci.AgentConnected, ci.RegisteredAt)
		}
		cpu, _ := ciResource(ci.RegisteredResources, "CPU")
		mem, _ := ciResource(ci.RegisteredResources, "MEMORY")
		ports, _ := ciResource(ci.RegisteredResources, "PORTS")
		udp, hasUDP := ciResource(ci.RegisteredResources, "PORTS_UDP")
		if cpu.IntegerValue != 4096 || aws.ToString(cpu.Type) != "INTEGER" || mem.IntegerValue != 7482 {
			t.Fatalf("cpu %+v mem %+v", cpu, mem)
		}
		if !slices.Equal(ports.StringSetValue, []string{"22", "2375", "2376", "51678", "51679"}) || aws.ToString(ports.Type) != "STRINGSET" {
			t.Fatalf("ports %+v", ports)
		}
		if !hasUDP || len(udp.StringSetValue) != 0 {
			t.Fatalf("udp %+v", udp)
		}
		rcpu, _ := ciResource(ci.RemainingResources, "CPU")
		if rcpu.IntegerValue != 4096 {
			t.Fatalf("remaining cpu %+v", rcpu)
		}
		for name, want := range map[string]string{"ecs.os-type": "linux", "ecs.os-family": "LINUX", "ecs.cpu-architecture": "x86_64", "ecs.availability-zone": "us-east-1a"} {
			if v, ok := ciAttr(ci.Attributes, name); !ok || v != want {
				t.Errorf("attribute %s = %q (present %v), want %q", name, v, ok, want)
			}
		}
		// The default cluster was created on demand and counts the instance.
		dc, err := cl.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"default"}})
		if err != nil || len(dc.Clusters) != 1 || dc.Clusters[0].RegisteredContainerInstancesCount != 1 {
			t.Fatalf("describe default cluster: %+v %v", dc, err)
		}
	})

	t.Run("identity document, attributes and tags", func(t *testing.T) {
		env.Reset(t)
		if _, err := cl.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
			t.Fatal(err)
		}
		doc := `{"instanceId":"i-0123456789abcdef0","availabilityZone":"us-east-1c","instanceType":"m5.large","region":"us-east-1","imageId":"ami-12345678","architecture":"x86_64"}`
		ci := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{
			Cluster:                           aws.String("prod"),
			InstanceIdentityDocument:          aws.String(doc),
			InstanceIdentityDocumentSignature: aws.String("not checked"),
			TotalResources: []types.Resource{
				{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 2048},
				{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 3900},
				{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22"}},
			},
			Attributes:  []types.Attribute{{Name: aws.String("stack"), Value: aws.String("blue")}, {Name: aws.String("ssd")}},
			VersionInfo: &types.VersionInfo{AgentVersion: aws.String("1.80.0"), DockerVersion: aws.String("DockerVersion: 20.10.24")},
			Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
		})
		if aws.ToString(ci.Ec2InstanceId) != "i-0123456789abcdef0" {
			t.Fatalf("ec2InstanceId %q", aws.ToString(ci.Ec2InstanceId))
		}
		for name, want := range map[string]string{"ecs.availability-zone": "us-east-1c", "ecs.instance-type": "m5.large", "ecs.ami-id": "ami-12345678", "stack": "blue", "ssd": ""} {
			if v, ok := ciAttr(ci.Attributes, name); !ok || v != want {
				t.Errorf("attribute %s = %q (present %v), want %q", name, v, ok, want)
			}
		}
		cpu, _ := ciResource(ci.RegisteredResources, "CPU")
		if cpu.IntegerValue != 2048 {
			t.Fatalf("cpu %+v", cpu)
		}
		if _, ok := ciResource(ci.RegisteredResources, "PORTS_UDP"); !ok {
			t.Fatal("PORTS_UDP not defaulted")
		}
		if aws.ToString(ci.VersionInfo.AgentVersion) != "1.80.0" {
			t.Fatalf("versionInfo %+v", ci.VersionInfo)
		}
		arn := aws.ToString(ci.ContainerInstanceArn)
		if !strings.Contains(arn, ":container-instance/prod/") {
			t.Fatalf("arn %s", arn)
		}
		// Tags only with include TAGS; health only with CONTAINER_INSTANCE_HEALTH.
		plain := ciDescribe(t, env, "prod", nil, arn).ContainerInstances[0]
		if len(plain.Tags) != 0 || plain.HealthStatus != nil {
			t.Fatalf("unasked tags/health: %+v %+v", plain.Tags, plain.HealthStatus)
		}
		full := ciDescribe(t, env, "prod", []types.ContainerInstanceField{"TAGS", "CONTAINER_INSTANCE_HEALTH"}, ciIDOf(arn)).ContainerInstances[0]
		if len(full.Tags) != 1 || aws.ToString(full.Tags[0].Key) != "team" {
			t.Fatalf("tags %+v", full.Tags)
		}
		if full.HealthStatus == nil || full.HealthStatus.OverallStatus != "OK" || len(full.HealthStatus.Details) != 1 || full.HealthStatus.Details[0].Type != "CONTAINER_RUNTIME" {
			t.Fatalf("health %+v", full.HealthStatus)
		}
		// Registering again with the ARN updates the same instance.
		again := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{
			Cluster: aws.String("prod"), ContainerInstanceArn: aws.String(arn),
			TotalResources: []types.Resource{{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1024}},
		})
		if aws.ToString(again.ContainerInstanceArn) != arn {
			t.Fatalf("re-register gave %s", aws.ToString(again.ContainerInstanceArn))
		}
		if c, _ := ciResource(again.RegisteredResources, "CPU"); c.IntegerValue != 1024 {
			t.Fatalf("re-registered cpu %+v", c)
		}
		if got := ciListAll(t, env, awsecs.ListContainerInstancesInput{Cluster: aws.String("prod")}); len(got) != 1 {
			t.Fatalf("re-register duplicated the instance: %v", got)
		}
		if again.Version <= ci.Version {
			t.Fatalf("version did not move: %d then %d", ci.Version, again.Version)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		env.Reset(t)
		reg := func(in *awsecs.RegisterContainerInstanceInput) error {
			_, err := cl.RegisterContainerInstance(ctx, in)
			return err
		}
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{Cluster: aws.String("nope")}), "ClusterNotFoundException")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{Attributes: []types.Attribute{{Name: aws.String("bad name!")}}}), "InvalidParameterException", "attributes[0].name")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{Attributes: []types.Attribute{{Name: aws.String("a"), Value: aws.String(" lead")}}}), "InvalidParameterException", "attributes[0].value")
		var many []types.Attribute
		for i := 0; i < 11; i++ {
			many = append(many, types.Attribute{Name: aws.String(fmt.Sprintf("custom%d", i))})
		}
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{Attributes: many}), "AttributeLimitExceededException")
		// ECS's own attributes do not count toward the limit.
		ecsOwn := append(slices.Clone(many[:10]), types.Attribute{Name: aws.String("ecs.capability.foo")}, types.Attribute{Name: aws.String("com.amazonaws.ecs.capability.bar")})
		if err := reg(&awsecs.RegisterContainerInstanceInput{Attributes: ecsOwn}); err != nil {
			t.Fatalf("10 custom + ECS attributes: %v", err)
		}
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{TotalResources: []types.Resource{{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"http"}}}}), "InvalidParameterException", "totalResources[0].stringSetValue[0]")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{TotalResources: []types.Resource{{Name: aws.String("CPU"), Type: aws.String("STRINGSET")}}}), "InvalidParameterException", "totalResources[0].type")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{InstanceIdentityDocument: aws.String("{not json")}), "InvalidParameterException", "instanceIdentityDocument")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{InstanceIdentityDocument: aws.String(`{"region":"eu-west-1"}`)}), "InvalidParameterException", "eu-west-1")
		ciWant(t, reg(&awsecs.RegisterContainerInstanceInput{ContainerInstanceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:container-instance/default/0123")}), "InvalidParameterException", "not found")
		_, err := cl.DescribeContainerInstances(ctx, &awsecs.DescribeContainerInstancesInput{ContainerInstances: []string{"x"}, Cluster: aws.String("nope")})
		ciWant(t, err, "ClusterNotFoundException")
		_, err = cl.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type ==")})
		ciWant(t, err, "InvalidParameterException", "filter")
		_, err = cl.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{NextToken: aws.String("!!")})
		ciWant(t, err, "InvalidParameterException", "nextToken")
		_, err = cl.UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{ContainerInstances: []string{"x"}, Status: "INACTIVE"})
		ciWant(t, err, "InvalidParameterException", "status")
	})

	t.Run("usage, counts, drain, deregister", func(t *testing.T) {
		env.Reset(t)
		a := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{})
		b := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{})
		aID := ciIDOf(aws.ToString(a.ContainerInstanceArn))
		// A running task on a, holding what the planner charged.
		ciPutRecord(t, env, ciScope.ContainerInstanceKey("default", aID), func(cur any) any {
			ci := *cur.(*resource.ContainerInstance)
			ci.Used = resource.Usage{CPU: 256, Memory: 512, TCPPorts: []int32{8080}}
			return &ci
		})
		taskID := "0123456789abcdef0123456789abcdef"
		ciPutRecord(t, env, ciScope.TaskKey("default", taskID), func(any) any {
			return &resource.Task{Task: ecs.Task{TaskArn: ciScope.TaskARN("default", taskID), LastStatus: "RUNNING", DesiredStatus: "RUNNING"},
				Scope: ciScope, Cluster: "default", ID: taskID, InstanceID: aID}
		})
		got := ciDescribe(t, env, "default", nil, aID, aws.ToString(b.ContainerInstanceArn), "missing-one").ContainerInstances
		if len(got) != 2 {
			t.Fatalf("described %d", len(got))
		}
		if got[0].RunningTasksCount != 1 || got[1].RunningTasksCount != 0 {
			t.Fatalf("running counts %d %d", got[0].RunningTasksCount, got[1].RunningTasksCount)
		}
		cpu, _ := ciResource(got[0].RemainingResources, "CPU")
		mem, _ := ciResource(got[0].RemainingResources, "MEMORY")
		ports, _ := ciResource(got[0].RemainingResources, "PORTS")
		if cpu.IntegerValue != 4096-256 || mem.IntegerValue != 7482-512 || !slices.Contains(ports.StringSetValue, "8080") || !slices.Contains(ports.StringSetValue, "22") {
			t.Fatalf("remaining %+v %+v %+v", cpu, mem, ports)
		}
		if r, _ := ciResource(got[0].RegisteredResources, "CPU"); r.IntegerValue != 4096 {
			t.Fatalf("registered cpu changed: %+v", r)
		}
		fails := ciDescribe(t, env, "default", nil, "missing-one").Failures
		if len(fails) != 1 || aws.ToString(fails[0].Reason) != "MISSING" || aws.ToString(fails[0].Arn) != ciScope.ContainerInstanceARN("default", "missing-one") {
			t.Fatalf("failures %+v", fails)
		}

		// Drain a: it stays registered (and counted) but lists under DRAINING.
		up, err := cl.UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{ContainerInstances: []string{aID, "missing-one"}, Status: "DRAINING"})
		if err != nil {
			t.Fatal(err)
		}
		if len(up.ContainerInstances) != 1 || aws.ToString(up.ContainerInstances[0].Status) != "DRAINING" || len(up.Failures) != 1 || aws.ToString(up.Failures[0].Reason) != "MISSING" {
			t.Fatalf("update state: %+v %+v", up.ContainerInstances, up.Failures)
		}
		if l := ciListAll(t, env, awsecs.ListContainerInstancesInput{Status: "DRAINING"}); len(l) != 1 || l[0] != aws.ToString(a.ContainerInstanceArn) {
			t.Fatalf("draining list %v", l)
		}
		if l := ciListAll(t, env, awsecs.ListContainerInstancesInput{Status: "ACTIVE"}); len(l) != 1 || l[0] != aws.ToString(b.ContainerInstanceArn) {
			t.Fatalf("active list %v", l)
		}
		dc, _ := cl.DescribeClusters(ctx, &awsecs.DescribeClustersInput{})
		if dc.Clusters[0].RegisteredContainerInstancesCount != 2 || dc.Clusters[0].RunningTasksCount != 1 {
			t.Fatalf("cluster counts %+v", dc.Clusters[0])
		}

		// Deregister: refused while a task runs, unless forced.
		_, err = cl.DeregisterContainerInstance(ctx, &awsecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(aID)})
		ciWant(t, err, "InvalidParameterException", "force")
		dr, err := cl.DeregisterContainerInstance(ctx, &awsecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(aws.ToString(a.ContainerInstanceArn)), Force: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(dr.ContainerInstance.Status) != "INACTIVE" || dr.ContainerInstance.AgentConnected {
			t.Fatalf("deregistered: %+v", dr.ContainerInstance)
		}
		// b has no tasks: plain deregistration works.
		if _, err := cl.DeregisterContainerInstance(ctx, &awsecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(ciIDOf(aws.ToString(b.ContainerInstanceArn)))}); err != nil {
			t.Fatal(err)
		}
		_, err = cl.DeregisterContainerInstance(ctx, &awsecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(aID), Force: aws.Bool(true)})
		ciWant(t, err, "InvalidParameterException", "not found")
		// INACTIVE instances stay describable, are not listed, and do not count.
		if d := ciDescribe(t, env, "default", nil, aID).ContainerInstances; len(d) != 1 || aws.ToString(d[0].Status) != "INACTIVE" {
			t.Fatalf("describe deregistered %+v", d)
		}
		if l := ciListAll(t, env, awsecs.ListContainerInstancesInput{}); len(l) != 0 {
			t.Fatalf("list after deregistration %v", l)
		}
		dc, _ = cl.DescribeClusters(ctx, &awsecs.DescribeClustersInput{})
		if dc.Clusters[0].RegisteredContainerInstancesCount != 0 {
			t.Fatalf("cluster counts after deregistration %+v", dc.Clusters[0])
		}
		// The orphaned task record is left as it was.
		if e, ok := env.CP.Cache.Snapshot().Get(ciScope.TaskKey("default", taskID)); !ok || e.Obj.(*resource.Task).LastStatus != "RUNNING" {
			t.Fatalf("orphaned task changed: %+v", e)
		}
		// A deregistered instance cannot register again under its ARN.
		_, err = cl.RegisterContainerInstance(ctx, &awsecs.RegisterContainerInstanceInput{ContainerInstanceArn: a.ContainerInstanceArn})
		ciWant(t, err, "ClientException", "deregistered")
		// Nor change state.
		up, err = cl.UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{ContainerInstances: []string{aID}, Status: "ACTIVE"})
		if err != nil || len(up.Failures) != 1 {
			t.Fatalf("update deregistered: %+v %v", up, err)
		}
	})

	t.Run("draining instances get no new tasks", func(t *testing.T) {
		env.Reset(t)
		ci := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{})
		if _, err := cl.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{Family: aws.String("drain"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("busybox"), Memory: aws.Int32(32)}}}); err != nil {
			t.Fatal(err)
		}
		rt, err := cl.RunTask(ctx, &awsecs.RunTaskInput{TaskDefinition: aws.String("drain")})
		if err != nil || len(rt.Tasks) != 1 || aws.ToString(rt.Tasks[0].ContainerInstanceArn) != aws.ToString(ci.ContainerInstanceArn) {
			t.Fatalf("RunTask on the active instance: %+v %v", rt, err)
		}
		if _, err := cl.UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{ContainerInstances: []string{aws.ToString(ci.ContainerInstanceArn)}, Status: "DRAINING"}); err != nil {
			t.Fatal(err)
		}
		// Nothing is placed: a failure, or ECS's error for a cluster without
		// ACTIVE instances.
		rt, err = cl.RunTask(ctx, &awsecs.RunTaskInput{TaskDefinition: aws.String("drain")})
		if err == nil && (len(rt.Tasks) != 0 || len(rt.Failures) != 1) {
			t.Fatalf("RunTask on a draining instance: %+v", rt)
		}
		if err != nil {
			ciWant(t, err, "InvalidParameterException")
		}
		// Back to ACTIVE: placeable again.
		if _, err := cl.UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{ContainerInstances: []string{aws.ToString(ci.ContainerInstanceArn)}, Status: "ACTIVE"}); err != nil {
			t.Fatal(err)
		}
		if rt, err = cl.RunTask(ctx, &awsecs.RunTaskInput{TaskDefinition: aws.String("drain")}); err != nil || len(rt.Tasks) != 1 {
			t.Fatalf("RunTask after reactivation: %+v %v", rt, err)
		}
		d := ciDescribe(t, env, "default", nil, aws.ToString(ci.ContainerInstanceArn)).ContainerInstances[0]
		if d.PendingTasksCount+d.RunningTasksCount != 2 {
			t.Fatalf("task counts %d pending %d running", d.PendingTasksCount, d.RunningTasksCount)
		}
		if mem, _ := ciResource(d.RemainingResources, "MEMORY"); mem.IntegerValue != 7482-64 {
			t.Fatalf("remaining memory %+v", mem)
		}
	})

	t.Run("list pagination and filters", func(t *testing.T) {
		env.Reset(t)
		var all []string
		for i := 0; i < 5; i++ {
			doc := fmt.Sprintf(`{"instanceType":"t%d.micro","availabilityZone":"us-east-1%c"}`, i%2, 'a'+rune(i%3))
			ci := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{InstanceIdentityDocument: aws.String(doc),
				Attributes: []types.Attribute{{Name: aws.String("idx"), Value: aws.String(fmt.Sprint(i))}}})
			all = append(all, aws.ToString(ci.ContainerInstanceArn))
		}
		slices.Sort(all)
		page, err := cl.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{MaxResults: aws.Int32(2)})
		if err != nil || len(page.ContainerInstanceArns) != 2 || page.NextToken == nil {
			t.Fatalf("first page %+v %v", page, err)
		}
		got := ciListAll(t, env, awsecs.ListContainerInstancesInput{MaxResults: aws.Int32(2)})
		if !slices.Equal(got, all) {
			t.Fatalf("paged list %v, want %v", got, all)
		}
		t0 := ciListAll(t, env, awsecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.instance-type == t0.micro")})
		if len(t0) != 3 {
			t.Fatalf("t0 filter %v", t0)
		}
		az := ciListAll(t, env, awsecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:idx != 0"), MaxResults: aws.Int32(1)})
		if len(az) != 3 { // zones a,b,c,a,b: idx 1, 3 and 4
			t.Fatalf("az filter %v", az)
		}
		if _, err := cl.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{MaxResults: aws.Int32(101)}); err == nil {
			t.Fatal("maxResults 101 accepted")
		}
	})

	t.Run("poll endpoint and agent update", func(t *testing.T) {
		env.Reset(t)
		ci := ciRegister(t, env, &awsecs.RegisterContainerInstanceInput{})
		pe, err := cl.DiscoverPollEndpoint(ctx, &awsecs.DiscoverPollEndpointInput{ContainerInstance: ci.ContainerInstanceArn})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(pe.Endpoint) != env.URL+"/" || aws.ToString(pe.TelemetryEndpoint) == "" || aws.ToString(pe.ServiceConnectEndpoint) == "" {
			t.Fatalf("poll endpoint %+v (server %s)", pe, env.URL)
		}
		_, err = cl.UpdateContainerAgent(ctx, &awsecs.UpdateContainerAgentInput{ContainerInstance: ci.ContainerInstanceArn})
		ciWant(t, err, "UnsupportedFeatureException", "ecsd")
		_, err = cl.UpdateContainerAgent(ctx, &awsecs.UpdateContainerAgentInput{ContainerInstance: aws.String("nope")})
		ciWant(t, err, "InvalidParameterException")
	})

	t.Run("wire shape", func(t *testing.T) {
		env.Reset(t)
		rec := &clusterBodyRecorder{}
		raw := clusterRawClient(env, rec)
		if _, err := raw.RegisterContainerInstance(ctx, &awsecs.RegisterContainerInstanceInput{}); err != nil {
			t.Fatal(err)
		}
		var body struct {
			ContainerInstance map[string]json.RawMessage `json:"containerInstance"`
		}
		rec.mu.Lock()
		err := json.Unmarshal(rec.last, &body)
		rec.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		clusterHasKeys(t, body.ContainerInstance,
			[]string{"containerInstanceArn", "ec2InstanceId", "version", "versionInfo", "remainingResources", "registeredResources", "status", "agentConnected", "runningTasksCount", "pendingTasksCount", "attributes", "registeredAt"},
			[]string{"healthStatus"})
	})
}
