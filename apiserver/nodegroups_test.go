package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// ngCall sends a raw JSON 1.1 request with target (dev auth: a well-formed
// signature is enough) and returns status, error type and body.
func ngCall(t *testing.T, env *testenv.Env, target, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.URL+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/"+now.Format("20060102")+"/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Type string `json:"__type"`
	}
	if resp.StatusCode != 200 {
		json.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.Type, b
}

func ngOp(t *testing.T, env *testenv.Env, op, body string) (string, []byte) {
	t.Helper()
	status, typ, b := ngCall(t, env, apiserver.NodeGroupsTargetPrefix+"."+op, body)
	if status >= 500 {
		t.Fatalf("%s %s: server fault %d: %s", op, body, status, b)
	}
	return typ, b
}

// ngOK runs op, fails on an error, decodes the answer into out.
func ngOK(t *testing.T, env *testenv.Env, op, body string, out any) {
	t.Helper()
	typ, b := ngOp(t, env, op, body)
	if typ != "" {
		t.Fatalf("%s %s: %s", op, body, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: decode %s: %v", op, b, err)
		}
	}
}

func ngErr(t *testing.T, env *testenv.Env, op, body, wantType, wantInMsg string) {
	t.Helper()
	typ, b := ngOp(t, env, op, body)
	if typ != wantType || !strings.Contains(string(b), wantInMsg) {
		t.Errorf("%s %s: got %s %s; want %s mentioning %q", op, body, typ, b, wantType, wantInMsg)
	}
}

func TestNodeGroupsAPI(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	scope := resource.Scope{Account: "123456789012", Region: "us-east-1"}

	t.Run("ClusterMustExist", func(t *testing.T) {
		ngErr(t, env, "CreateNodeGroup", `{"name":"g","minSize":0,"maxSize":1}`, ecs.CodeClusterNotFound, "")
		ngErr(t, env, "CreateNodeGroup", `{"name":"g","cluster":"nope","minSize":0,"maxSize":1}`, ecs.CodeClusterNotFound, "")
	})
	if _, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}

	t.Run("CreateDefaults", func(t *testing.T) {
		var out apiserver.NodeGroupResponse
		ngOK(t, env, "CreateNodeGroup", `{"name":"basic","minSize":1,"maxSize":3}`, &out)
		g := out.NodeGroup
		if g.Name != "basic" || g.MinSize != 1 || g.MaxSize != 3 || g.DesiredCapacity != 1 {
			t.Errorf("sizes: %+v", g)
		}
		if g.InstanceType != "ecsd.medium" || g.CPU != 2048 || g.Memory != 4096 {
			t.Errorf("template: %+v", g)
		}
		if len(g.AvailabilityZones) != 1 || g.AvailabilityZones[0] != "us-east-1a" {
			t.Errorf("zones: %v", g.AvailabilityZones)
		}
		if g.Status != "ACTIVE" || g.Cluster != scope.ClusterARN("default") || g.CreatedAt == nil || g.Nodes == nil || g.Attributes == nil {
			t.Errorf("view: %+v", g)
		}
		sc, name, err := resource.ParseNodeGroupARN(g.AutoScalingGroupArn)
		if err != nil || sc != scope || name != "basic" || !strings.HasPrefix(g.AutoScalingGroupArn, "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:") {
			t.Errorf("ARN %q: %v %v %v", g.AutoScalingGroupArn, sc, name, err)
		}
	})

	t.Run("CreateTemplate", func(t *testing.T) {
		var out apiserver.NodeGroupResponse
		ngOK(t, env, "CreateNodeGroup", `{"name":"big","cluster":"web","minSize":0,"maxSize":5,"desiredCapacity":2,
			"instanceType":"m5.xlarge","memory":12000,"availabilityZones":["us-east-1b","us-east-1c"],"attributes":{"tier":"gold"}}`, &out)
		g := out.NodeGroup
		if g.CPU != 4096 || g.Memory != 12000 || g.DesiredCapacity != 2 || g.Attributes["tier"] != "gold" || len(g.AvailabilityZones) != 2 || g.Cluster != scope.ClusterARN("web") {
			t.Errorf("view: %+v", g)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		for _, c := range []struct{ body, typ, msg string }{
			{`{"minSize":0,"maxSize":1}`, ecs.CodeInvalidParameter, "name"},
			{`{"name":"bad name","minSize":0,"maxSize":1}`, ecs.CodeInvalidParameter, "name"},
			{`{"name":"` + strings.Repeat("x", 256) + `","minSize":0,"maxSize":1}`, ecs.CodeInvalidParameter, "name"},
			{`{"name":"v","maxSize":1}`, ecs.CodeInvalidParameter, "minSize"},
			{`{"name":"v","minSize":0}`, ecs.CodeInvalidParameter, "maxSize"},
			{`{"name":"v","minSize":-1,"maxSize":1}`, ecs.CodeInvalidParameter, "minSize"},
			{`{"name":"v","minSize":2,"maxSize":1}`, ecs.CodeInvalidParameter, "minSize"},
			{`{"name":"v","minSize":0,"maxSize":1001}`, ecs.CodeInvalidParameter, "maxSize"},
			{`{"name":"v","minSize":0,"maxSize":2,"desiredCapacity":3}`, ecs.CodeInvalidParameter, "desiredCapacity"},
			{`{"name":"v","minSize":1,"maxSize":2,"desiredCapacity":0}`, ecs.CodeInvalidParameter, "desiredCapacity"},
			{`{"name":"v","minSize":0,"maxSize":2,"instanceType":"z9.huge"}`, ecs.CodeInvalidParameter, "instanceType"},
			{`{"name":"v","minSize":0,"maxSize":2,"cpu":1}`, ecs.CodeInvalidParameter, "cpu"},
			{`{"name":"v","minSize":0,"maxSize":2,"availabilityZones":["a","a"]}`, ecs.CodeInvalidParameter, "availabilityZones"},
			{`{"name":"v","minSize":0,"maxSize":2,"attributes":{"ecs.x":"y"}}`, ecs.CodeInvalidParameter, "attributes"},
			{`{"name":"v","minSize":0,"maxSize":2,"attributes":{"a":"b,c"}}`, ecs.CodeInvalidParameter, "attributes"},
			{`{"name":"v","minSize":"x","maxSize":2}`, ecs.CodeSerialization, "minSize"},
			{`{"name":"basic","minSize":0,"maxSize":2}`, ecs.CodeInvalidParameter, "already exists"},
		} {
			ngErr(t, env, "CreateNodeGroup", c.body, c.typ, c.msg)
		}
	})

	t.Run("Describe", func(t *testing.T) {
		var out apiserver.DescribeNodeGroupsResponse
		ngOK(t, env, "DescribeNodeGroups", `{}`, &out)
		if len(out.NodeGroups) != 2 || out.NodeGroups[0].Name != "basic" || out.NodeGroups[1].Name != "big" {
			t.Fatalf("all: %+v", out)
		}
		arn := out.NodeGroups[1].AutoScalingGroupArn
		ngOK(t, env, "DescribeNodeGroups", `{"names":["`+arn+`","ghost"]}`, &out)
		if len(out.NodeGroups) != 1 || out.NodeGroups[0].Name != "big" || len(out.Failures) != 1 || out.Failures[0].Reason != "MISSING" || out.Failures[0].Arn != "ghost" {
			t.Errorf("named: %+v", out)
		}
		ngErr(t, env, "DescribeNodeGroups", `{"names":["arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:x:autoScalingGroupName/big"]}`, ecs.CodeInvalidParameter, "name")
	})

	t.Run("Update", func(t *testing.T) {
		var out apiserver.NodeGroupResponse
		ngOK(t, env, "UpdateNodeGroup", `{"name":"basic","desiredCapacity":3}`, &out)
		if out.NodeGroup.DesiredCapacity != 3 || out.NodeGroup.MinSize != 1 || out.NodeGroup.MaxSize != 3 {
			t.Errorf("desired 3: %+v", out.NodeGroup)
		}
		ngOK(t, env, "UpdateNodeGroup", `{"name":"basic","minSize":0,"maxSize":10,"desiredCapacity":0}`, &out)
		if out.NodeGroup.DesiredCapacity != 0 || out.NodeGroup.MinSize != 0 || out.NodeGroup.MaxSize != 10 {
			t.Errorf("all three: %+v", out.NodeGroup)
		}
		ngErr(t, env, "UpdateNodeGroup", `{"name":"basic","desiredCapacity":11}`, ecs.CodeInvalidParameter, "desiredCapacity")
		ngErr(t, env, "UpdateNodeGroup", `{"name":"basic","maxSize":1001}`, ecs.CodeInvalidParameter, "maxSize")
		ngErr(t, env, "UpdateNodeGroup", `{"name":"basic"}`, ecs.CodeInvalidParameter, "desiredCapacity")
		ngErr(t, env, "UpdateNodeGroup", `{"name":"ghost","desiredCapacity":1}`, ecs.CodeResourceNotFound, "ghost")
	})

	t.Run("DeleteRefusedWhileProviderUsesIt", func(t *testing.T) {
		key := scope.CapacityProviderKey("cp1")
		cp := &resource.CapacityProvider{Scope: scope, NodeGroup: "big"}
		cp.Name, cp.Status = "cp1", ecs.CapacityProviderStatusACTIVE
		put := func(v any) {
			rev, err := env.CP.Store.Txn(ctx, store.Put(key, resource.Encode(v)))
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := env.CP.Cache.WaitFor(wctx, rev); err != nil {
				t.Fatal(err)
			}
		}
		put(cp)
		ngErr(t, env, "DeleteNodeGroup", `{"name":"big"}`, ecs.CodeResourceInUse, "cp1")
		cp.Status = "INACTIVE"
		put(cp)
		var out apiserver.NodeGroupResponse
		ngOK(t, env, "DeleteNodeGroup", `{"name":"big","forceDelete":true}`, &out)
		if out.NodeGroup.Status != resource.NodeGroupDeleting || out.NodeGroup.DesiredCapacity != 0 || out.NodeGroup.MinSize != 0 {
			t.Errorf("deleting: %+v", out.NodeGroup)
		}
		g, ok := apiserver.Peek[resource.NodeGroup](env.CP.Cache.Snapshot(), scope.NodeGroupKey("big"))
		if !ok || !g.ForceDelete {
			t.Errorf("record: %+v", g)
		}
		ngErr(t, env, "UpdateNodeGroup", `{"name":"big","desiredCapacity":1}`, ecs.CodeResourceInUse, "deleted")
		ngErr(t, env, "CreateNodeGroup", `{"name":"big","minSize":0,"maxSize":1}`, ecs.CodeResourceInUse, "deleted")
		ngErr(t, env, "DeleteNodeGroup", `{"name":"ghost"}`, ecs.CodeResourceNotFound, "ghost")
	})

	t.Run("TargetsNeverCross", func(t *testing.T) {
		for _, target := range []string{
			ecs.TargetPrefix + ".CreateNodeGroup",
			ecs.TargetPrefix + "." + apiserver.NodeGroupsTargetPrefix + ".CreateNodeGroup",
			apiserver.NodeGroupsTargetPrefix + ".CreateCluster",
			apiserver.NodeGroupsTargetPrefix + ".",
			apiserver.NodeGroupsTargetPrefix + "CreateNodeGroup",
		} {
			if status, typ, b := ngCall(t, env, target, `{"name":"x","minSize":0,"maxSize":1,"clusterName":"x"}`); status != 400 || typ != ecs.CodeUnknownOperation {
				t.Errorf("%s: %d %s %s", target, status, typ, b)
			}
		}
		if _, err := env.ECS.ListClusters(ctx, &sdkecs.ListClustersInput{}); err != nil {
			t.Errorf("ECS still served: %v", err)
		}
	})
}
