package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/coder/websocket"

	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Registration through the agent channel of the kinds of instance issue 6
// adds: Fargate pool agents, EXTERNAL instances and node-group machines; and
// the pool agent's connection, which serves the Fargate tasks of every
// cluster of its scope.

func agPost(t *testing.T, env *testenv.Env, req agentapi.RegisterRequest) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(env.URL+agentapi.RegisterPath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func agRegister(t *testing.T, env *testenv.Env, req agentapi.RegisterRequest) agentapi.RegisterResponse {
	t.Helper()
	if req.ContainerInstanceArn == "" {
		req.JoinToken = env.CP.JoinToken()
	}
	if req.TotalResources == nil {
		req.TotalResources = []ecs.Resource{{Name: "CPU", Type: "INTEGER", IntegerValue: 4096}, {Name: "MEMORY", Type: "INTEGER", IntegerValue: 8192}}
	}
	status, body := agPost(t, env, req)
	if status != 200 {
		t.Fatalf("register %+v: %d %s", req, status, body)
	}
	var out agentapi.RegisterResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func agRecord(t *testing.T, env *testenv.Env, arn string) *resource.ContainerInstance {
	t.Helper()
	a, err := resource.ParseARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := env.CP.Cache.Snapshot().Get(a.Scope.ContainerInstanceKey(a.Parts[0], a.Parts[1]))
	if !ok {
		t.Fatalf("no record for %s", arn)
	}
	return e.Obj.(*resource.ContainerInstance)
}

func agPut(t *testing.T, env *testenv.Env, key string, v any) {
	t.Helper()
	op := store.Put(key, resource.Encode(v))
	rev, err := env.CP.Store.Txn(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.CP.Cache.WaitFor(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
}

func TestAgentRegisterFargatePool(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()

	// An ordinary instance of default, then a pool agent that names a cluster
	// that does not even exist: it joins the pool whatever --cluster says.
	ec2 := agRegister(t, env, agentapi.RegisterRequest{Hostname: "ec2"})
	pool := agRegister(t, env, agentapi.RegisterRequest{Hostname: "pool", Cluster: "no-such-cluster", Fargate: true, InstanceType: "fargate"})
	if !strings.HasPrefix(pool.ContainerInstanceArn, ciScope.ContainerInstanceARN(resource.FargatePool, "")) {
		t.Fatalf("pool instance ARN %s", pool.ContainerInstanceArn)
	}
	if pool.ClusterArn != ciScope.ClusterARN(resource.FargatePool) {
		t.Fatalf("pool cluster ARN %s", pool.ClusterArn)
	}
	rec := agRecord(t, env, pool.ContainerInstanceArn)
	if !rec.Fargate || rec.Cluster != resource.FargatePool || rec.External {
		t.Fatalf("pool record %+v", rec)
	}
	if _, ok := env.CP.Cache.Snapshot().Get(ciScope.ClusterKey(resource.FargatePool)); ok {
		t.Fatal("the pool got a cluster record")
	}
	if _, ok := env.CP.Cache.Snapshot().Get(ciScope.ClusterKey("no-such-cluster")); ok {
		t.Fatal("the pool agent's --cluster was created")
	}

	// Never listed, described or counted in any cluster.
	list, err := env.ECS.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{})
	if err != nil || len(list.ContainerInstanceArns) != 1 || list.ContainerInstanceArns[0] != ec2.ContainerInstanceArn {
		t.Fatalf("list of default: %+v %v", list, err)
	}
	d := ciDescribe(t, env, "default", nil, pool.ContainerInstanceArn, idOfArn(pool.ContainerInstanceArn))
	if len(d.ContainerInstances) != 0 || len(d.Failures) != 2 {
		t.Fatalf("describe of the pool instance in default: %+v", d)
	}
	cl, err := env.ECS.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"default"}, Include: []types.ClusterField{types.ClusterFieldStatistics}})
	if err != nil || len(cl.Clusters) != 1 || cl.Clusters[0].RegisteredContainerInstancesCount != 1 {
		t.Fatalf("default counts: %+v %v", cl, err)
	}
	clusters, err := env.ECS.ListClusters(ctx, &awsecs.ListClustersInput{})
	if err != nil || len(clusters.ClusterArns) != 1 {
		t.Fatalf("clusters: %+v %v", clusters, err)
	}
	// The pool is no cluster a client can name.
	_, err = env.ECS.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{Cluster: aws.String(resource.FargatePool)})
	ciWant(t, err, ecs.CodeInvalidParameter)

	// Resuming keeps the instance in the pool, whatever the request says.
	again := agRegister(t, env, agentapi.RegisterRequest{ContainerInstanceArn: pool.ContainerInstanceArn, Secret: pool.Secret, Hostname: "pool"})
	if again.ContainerInstanceArn != pool.ContainerInstanceArn || !agRecord(t, env, pool.ContainerInstanceArn).Fargate {
		t.Fatalf("resumed %+v", again)
	}

	// A pool agent is no other kind of instance too.
	for _, req := range []agentapi.RegisterRequest{
		{JoinToken: env.CP.JoinToken(), Fargate: true, External: true},
		{JoinToken: env.CP.JoinToken(), Fargate: true, NodeGroup: "ng"},
		{JoinToken: env.CP.JoinToken(), NodeID: "n-1"},
	} {
		status, body := agPost(t, env, req)
		var er agentapi.ErrorResponse
		json.Unmarshal(body, &er)
		if status != 400 || er.Code != agentapi.ErrBadRequest {
			t.Fatalf("%+v: %d %s", req, status, body)
		}
	}
}

func idOfArn(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

func TestAgentRegisterExternalAndNodeGroup(t *testing.T) {
	env := testenv.Start(t)
	ext := agRegister(t, env, agentapi.RegisterRequest{Hostname: "edge", External: true})
	d := ciDescribe(t, env, "default", nil, ext.ContainerInstanceArn)
	if len(d.ContainerInstances) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	if v, ok := ciAttr(d.ContainerInstances[0].Attributes, "ecs.capability.external"); !ok || v != "" {
		t.Fatalf("external attribute: %q %v in %+v", v, ok, d.ContainerInstances[0].Attributes)
	}
	if !agRecord(t, env, ext.ContainerInstanceArn).External {
		t.Fatal("record not external")
	}
	// Placement constraints read it.
	list, err := env.ECS.ListContainerInstances(context.Background(), &awsecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.capability.external exists")})
	if err != nil || len(list.ContainerInstanceArns) != 1 {
		t.Fatalf("filter: %+v %v", list, err)
	}
	// A resumed registration keeps it (the agent does not send it itself).
	agRegister(t, env, agentapi.RegisterRequest{ContainerInstanceArn: ext.ContainerInstanceArn, Secret: ext.Secret, Hostname: "edge"})
	d = ciDescribe(t, env, "default", nil, ext.ContainerInstanceArn)
	if _, ok := ciAttr(d.ContainerInstances[0].Attributes, "ecs.capability.external"); !ok {
		t.Fatal("external attribute lost on resume")
	}

	// A node group's machine: linked to its node, and to the ACTIVE capacity
	// provider of its group.
	now := time.Now()
	cp := &resource.CapacityProvider{Scope: ciScope, NodeGroup: "ng1", CapacityProvider: ecs.CapacityProvider{
		Name: "cp-old", Status: ecs.CapacityProviderStatusINACTIVE, CapacityProviderArn: ciScope.CapacityProviderARN("cp-old")}, DeletedAt: &now}
	agPut(t, env, ciScope.CapacityProviderKey("cp-old"), cp)
	m1 := agRegister(t, env, agentapi.RegisterRequest{Hostname: "n1", NodeGroup: "ng1", NodeID: "n-1"})
	rec := agRecord(t, env, m1.ContainerInstanceArn)
	if rec.NodeGroup != "ng1" || rec.NodeID != "n-1" || rec.CapacityProviderName != "" {
		t.Fatalf("node record %+v", rec)
	}
	cp = &resource.CapacityProvider{Scope: ciScope, NodeGroup: "ng1", CapacityProvider: ecs.CapacityProvider{
		Name: "cp1", Status: ecs.CapacityProviderStatusACTIVE, CapacityProviderArn: ciScope.CapacityProviderARN("cp1")}}
	agPut(t, env, ciScope.CapacityProviderKey("cp1"), cp)
	m2 := agRegister(t, env, agentapi.RegisterRequest{Hostname: "n2", NodeGroup: "ng1", NodeID: "n-2"})
	d = ciDescribe(t, env, "default", nil, m2.ContainerInstanceArn)
	if got := aws.ToString(d.ContainerInstances[0].CapacityProviderName); got != "cp1" {
		t.Fatalf("capacityProviderName %q", got)
	}
	// The first machine learns its provider when it registers again.
	agRegister(t, env, agentapi.RegisterRequest{ContainerInstanceArn: m1.ContainerInstanceArn, Secret: m1.Secret, Hostname: "n1"})
	rec = agRecord(t, env, m1.ContainerInstanceArn)
	if rec.CapacityProviderName != "cp1" || rec.NodeGroup != "ng1" || rec.NodeID != "n-1" {
		t.Fatalf("resumed node record %+v", rec)
	}
	// Another group's machine gets no provider.
	m3 := agRegister(t, env, agentapi.RegisterRequest{Hostname: "n3", NodeGroup: "ng2", NodeID: "n-1"})
	if rec := agRecord(t, env, m3.ContainerInstanceArn); rec.CapacityProviderName != "" {
		t.Fatalf("ng2 machine got provider %q", rec.CapacityProviderName)
	}
}

// agTask stores a task of cluster placed on the pool instance id, as the
// planner places Fargate tasks.
func agTask(t *testing.T, env *testenv.Env, cluster, id, instanceID string) string {
	t.Helper()
	arn := ciScope.TaskARN(cluster, id)
	rec := &resource.Task{
		Task: ecs.Task{TaskArn: arn, ClusterArn: ciScope.ClusterARN(cluster), LastStatus: "PROVISIONING", DesiredStatus: "RUNNING",
			CreatedAt: ecs.NewTime(time.Now()), LaunchType: ecs.LaunchTypeFARGATE, CapacityProviderName: "FARGATE_SPOT", PlatformVersion: "1.4.0"},
		Scope: ciScope, Cluster: cluster, ID: id, InstanceID: instanceID, InstanceCluster: resource.FargatePool,
		StopTimeout: 2 * time.Minute,
		Definition:  ecs.TaskDefinition{Family: "web", Revision: 1},
	}
	agPut(t, env, ciScope.TaskKey(cluster, id), rec)
	return arn
}

func agDial(t *testing.T, env *testenv.Env, reg agentapi.RegisterResponse) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Authorization", agentapi.AuthScheme+" "+reg.ContainerInstanceArn+":"+reg.Secret)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(env.URL, "http")+agentapi.ConnectPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	agSend(t, ws, agentapi.TypeHello, agentapi.Hello{AgentVersion: "test"})
	return ws
}

func agSend(t *testing.T, ws *websocket.Conn, typ string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	data, _ := json.Marshal(agentapi.Envelope{Type: typ, Body: b})
	if err := ws.Write(context.Background(), websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
}

func agRead(t *testing.T, ws *websocket.Conn, typ string, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var env agentapi.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			if err := json.Unmarshal(env.Body, into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestAgentPoolConnectionServesEveryCluster(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if _, err := env.ECS.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	ec2 := agRegister(t, env, agentapi.RegisterRequest{Hostname: "ec2"})
	pool := agRegister(t, env, agentapi.RegisterRequest{Hostname: "pool", Fargate: true})
	poolID := idOfArn(pool.ContainerInstanceArn)
	a1 := agTask(t, env, "default", strings.Repeat("a", 32), poolID)
	a2 := agTask(t, env, "other", strings.Repeat("b", 32), poolID)

	ws := agDial(t, env, pool)
	var full agentapi.Tasks
	agRead(t, ws, agentapi.TypeTasks, &full)
	var arns []string
	for _, x := range full.Tasks {
		arns = append(arns, x.TaskArn)
		if x.StopTimeout != 2*time.Minute || x.CapacityProviderName != "FARGATE_SPOT" || x.PlatformVersion != "1.4.0" || x.LaunchType != "FARGATE" {
			t.Fatalf("assignment %+v", x)
		}
	}
	slices.Sort(arns)
	if !full.Full || !slices.Equal(arns, []string{a1, a2}) {
		t.Fatalf("full list %+v", full)
	}

	// A change to a task of another cluster is pushed to the pool agent.
	a3 := agTask(t, env, "other", strings.Repeat("c", 32), poolID)
	var push agentapi.Tasks
	agRead(t, ws, agentapi.TypeTasks, &push)
	if push.Full || len(push.Tasks) != 1 || push.Tasks[0].TaskArn != a3 {
		t.Fatalf("push %+v", push)
	}

	// The pool agent reports on tasks of both clusters.
	for i, arn := range []string{a1, a2} {
		agSend(t, ws, agentapi.TypeStateChange, agentapi.StateChange{Seq: uint64(i + 1), TaskArn: arn, Status: "PENDING", At: time.Now()})
		var ack agentapi.Ack
		agRead(t, ws, agentapi.TypeAck, &ack)
		if ack.Seq != uint64(i+1) || ack.Error != "" {
			t.Fatalf("ack of %s: %+v", arn, ack)
		}
	}
	out, err := env.ECS.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("other"), Tasks: []string{a2}})
	if err != nil || len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].LastStatus) != "PENDING" {
		t.Fatalf("describe %+v %v", out, err)
	}

	// An ordinary instance's connection gets none of them, and may not
	// report on them.
	ws2 := agDial(t, env, ec2)
	var full2 agentapi.Tasks
	agRead(t, ws2, agentapi.TypeTasks, &full2)
	if len(full2.Tasks) != 0 {
		t.Fatalf("ec2 instance got %+v", full2)
	}
	agSend(t, ws2, agentapi.TypeStateChange, agentapi.StateChange{Seq: 1, TaskArn: a1, Status: "RUNNING", At: time.Now()})
	var ack agentapi.Ack
	agRead(t, ws2, agentapi.TypeAck, &ack)
	if ack.Error == "" {
		t.Fatalf("ec2 instance reported on a pool task: %+v", ack)
	}
	agSend(t, ws2, agentapi.TypeStateChange, agentapi.StateChange{Seq: 2, TaskArn: a2, Status: "RUNNING", At: time.Now()})
	agRead(t, ws2, agentapi.TypeAck, &ack)
	if ack.Error == "" {
		t.Fatalf("ec2 instance reported on another cluster's task: %+v", ack)
	}
}
