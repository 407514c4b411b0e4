package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var attrScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

func attrWant(t *testing.T, err error, code string, parts ...string) {
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

func attrOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// attrInstance registers an instance through the API and returns its ARN.
func attrInstance(t *testing.T, env *testenv.Env, cluster, az string) string {
	t.Helper()
	out, err := env.ECS.RegisterContainerInstance(context.Background(), &awsecs.RegisterContainerInstanceInput{
		Cluster:    aws.String(cluster),
		Attributes: []types.Attribute{{Name: aws.String("ecs.availability-zone"), Value: aws.String(az)}},
	})
	attrOK(t, err)
	return aws.ToString(out.ContainerInstance.ContainerInstanceArn)
}

func attrID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

func attr(name, value, target string) types.Attribute {
	a := types.Attribute{Name: aws.String(name), TargetId: aws.String(target)}
	if value != "" {
		a.Value = aws.String(value)
	}
	if !strings.HasPrefix(target, "arn:") {
		a.TargetType = types.TargetTypeContainerInstance
	}
	return a
}

func attrPut(env *testenv.Env, cluster string, as ...types.Attribute) error {
	_, err := env.ECS.PutAttributes(context.Background(), &awsecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: as})
	return err
}

func attrDelete(env *testenv.Env, cluster string, as ...types.Attribute) error {
	_, err := env.ECS.DeleteAttributes(context.Background(), &awsecs.DeleteAttributesInput{Cluster: aws.String(cluster), Attributes: as})
	return err
}

// attrListAll pages through ListAttributes and returns "targetId name=value" lines.
func attrListAll(t *testing.T, env *testenv.Env, in awsecs.ListAttributesInput) []string {
	t.Helper()
	in.TargetType = types.TargetTypeContainerInstance
	var out []string
	for page := 0; ; page++ {
		res, err := env.ECS.ListAttributes(context.Background(), &in)
		attrOK(t, err)
		if in.MaxResults != nil && len(res.Attributes) > int(*in.MaxResults) {
			t.Fatalf("page of %d attributes, maxResults %d", len(res.Attributes), *in.MaxResults)
		}
		for _, a := range res.Attributes {
			if a.TargetType != types.TargetTypeContainerInstance {
				t.Errorf("targetType %q", a.TargetType)
			}
			out = append(out, aws.ToString(a.TargetId)+" "+aws.ToString(a.Name)+"="+aws.ToString(a.Value))
		}
		if res.NextToken == nil {
			return out
		}
		if page > 1000 {
			t.Fatal("ListAttributes never ends")
		}
		in.NextToken = res.NextToken
	}
}

func attrOf(t *testing.T, env *testenv.Env, cluster, arn string) map[string]string {
	t.Helper()
	out, err := env.ECS.DescribeContainerInstances(context.Background(), &awsecs.DescribeContainerInstancesInput{
		Cluster: aws.String(cluster), ContainerInstances: []string{arn}})
	attrOK(t, err)
	if len(out.ContainerInstances) != 1 {
		t.Fatalf("describe %s: %v", arn, out.Failures)
	}
	m := map[string]string{}
	for _, a := range out.ContainerInstances[0].Attributes {
		m[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	return m
}

func TestAttributes(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	for _, name := range []string{"attrs", "other"} {
		_, err := env.ECS.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(name)})
		attrOK(t, err)
	}
	a := attrInstance(t, env, "attrs", "us-east-1a")
	b := attrInstance(t, env, "attrs", "us-east-1b")
	elsewhere := attrInstance(t, env, "other", "us-east-1a")

	t.Run("put by ID and by ARN, describe and list", func(t *testing.T) {
		out, err := env.ECS.PutAttributes(ctx, &awsecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{
			attr("stack", "blue", attrID(a)),
			attr("team", "payments@corp/eu:1 x", a),
			attr("ssd", "", b),
			attr("stack", "green", b),
		}})
		attrOK(t, err)
		if len(out.Attributes) != 4 || aws.ToString(out.Attributes[0].TargetId) != attrID(a) {
			t.Errorf("response echoes %+v", out.Attributes)
		}
		got := attrOf(t, env, "attrs", a)
		if got["stack"] != "blue" || got["team"] != "payments@corp/eu:1 x" || got["ecs.availability-zone"] != "us-east-1a" {
			t.Errorf("instance a attributes %v", got)
		}
		if v, ok := attrOf(t, env, "attrs", b)["ssd"]; !ok || v != "" {
			t.Errorf("valueless attribute ssd: %q %v", v, ok)
		}
		// Replace a value.
		attrOK(t, attrPut(env, "attrs", attr("stack", "red", a)))
		if got := attrOf(t, env, "attrs", a)["stack"]; got != "red" {
			t.Errorf("stack after replace = %q", got)
		}
		all := attrListAll(t, env, awsecs.ListAttributesInput{Cluster: aws.String("attrs")})
		for _, want := range []string{a + " stack=red", a + " team=payments@corp/eu:1 x", b + " ssd=", b + " stack=green", a + " ecs.availability-zone=us-east-1a"} {
			if !slices.Contains(all, want) {
				t.Errorf("ListAttributes lacks %q: %v", want, all)
			}
		}
		for _, line := range all {
			if strings.HasPrefix(line, elsewhere) {
				t.Errorf("ListAttributes of cluster attrs lists %q", line)
			}
		}
	})

	t.Run("list filters and pagination", func(t *testing.T) {
		byName := attrListAll(t, env, awsecs.ListAttributesInput{Cluster: aws.String("attrs"), AttributeName: aws.String("stack")})
		slices.Sort(byName)
		want := []string{a + " stack=red", b + " stack=green"}
		slices.Sort(want)
		if !slices.Equal(byName, want) {
			t.Errorf("by name %v, want %v", byName, want)
		}
		byValue := attrListAll(t, env, awsecs.ListAttributesInput{Cluster: aws.String("attrs"), AttributeName: aws.String("stack"), AttributeValue: aws.String("green")})
		if !slices.Equal(byValue, []string{b + " stack=green"}) {
			t.Errorf("by value %v", byValue)
		}
		full := attrListAll(t, env, awsecs.ListAttributesInput{Cluster: aws.String("attrs")})
		for _, n := range []int32{1, 2, 3} {
			paged := attrListAll(t, env, awsecs.ListAttributesInput{Cluster: aws.String("attrs"), MaxResults: aws.Int32(n)})
			if !slices.Equal(paged, full) {
				t.Errorf("pages of %d: %v\nwant %v", n, paged, full)
			}
		}
		_, err := env.ECS.ListAttributes(ctx, &awsecs.ListAttributesInput{Cluster: aws.String("attrs"), TargetType: types.TargetTypeContainerInstance, AttributeValue: aws.String("red")})
		attrWant(t, err, "InvalidParameterException", "attributeName")
		for _, n := range []int32{0, 101} {
			_, err = env.ECS.ListAttributes(ctx, &awsecs.ListAttributesInput{Cluster: aws.String("attrs"), TargetType: types.TargetTypeContainerInstance, MaxResults: aws.Int32(n)})
			attrWant(t, err, "InvalidParameterException", "maxResults")
		}
		_, err = env.ECS.ListAttributes(ctx, &awsecs.ListAttributesInput{Cluster: aws.String("attrs"), TargetType: types.TargetTypeContainerInstance, NextToken: aws.String("garbage")})
		attrWant(t, err, "InvalidParameterException", "nextToken")
		_, err = env.ECS.ListAttributes(ctx, &awsecs.ListAttributesInput{Cluster: aws.String("nope"), TargetType: types.TargetTypeContainerInstance})
		attrWant(t, err, "ClusterNotFoundException")
	})

	t.Run("errors", func(t *testing.T) {
		missing := attrScope.ContainerInstanceARN("attrs", "0123456789abcdef0123456789abcdef")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", missing)), "TargetNotFoundException")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", "0123456789abcdef0123456789abcdef")), "TargetNotFoundException")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", elsewhere)), "TargetNotFoundException")
		attrWant(t, attrDelete(env, "attrs", attr("x", "", missing)), "TargetNotFoundException")
		attrWant(t, attrPut(env, "nope", attr("x", "1", a)), "ClusterNotFoundException")
		// A short ID needs targetType.
		attrWant(t, attrPut(env, "attrs", types.Attribute{Name: aws.String("x"), TargetId: aws.String(attrID(a))}), "InvalidParameterException", "targetType")
		attrWant(t, attrPut(env, "attrs", types.Attribute{Name: aws.String("x"), TargetType: types.TargetTypeContainerInstance}), "InvalidParameterException", "targetId")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", "arn:aws:ecs:eu-west-1:123456789012:container-instance/attrs/abc")), "InvalidParameterException", "targetId")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", attrScope.ClusterARN("attrs"))), "InvalidParameterException", "targetId")
		attrWant(t, attrPut(env, "attrs", attr("bad name!", "1", a)), "InvalidParameterException", "attributes[0].name")
		attrWant(t, attrPut(env, "attrs", attr(strings.Repeat("n", 129), "1", a)), "InvalidParameterException", "attributes[0].name")
		attrWant(t, attrPut(env, "attrs", attr("x", "1", a), attr("y", " lead", a)), "InvalidParameterException", "attributes[1].value")
		attrWant(t, attrPut(env, "attrs", attr("y", "semi;colon", a)), "InvalidParameterException", "attributes[0].value")
		attrWant(t, attrPut(env, "attrs", attr("y", strings.Repeat("v", 129), a)), "InvalidParameterException", "attributes[0].value")
		attrWant(t, attrPut(env, "attrs", attr("ecs.availability-zone", "us-east-1c", a)), "InvalidParameterException", "ecs.availability-zone")
		attrWant(t, attrDelete(env, "attrs", attr("ecs.availability-zone", "", a)), "InvalidParameterException", "ecs.availability-zone")
		var eleven []types.Attribute
		for i := range 11 {
			eleven = append(eleven, attr(fmt.Sprintf("k%d", i), "v", a))
		}
		attrWant(t, attrPut(env, "attrs", eleven...), "InvalidParameterException", "at most 10")
		attrWant(t, attrPut(env, "attrs", []types.Attribute{}...), "InvalidParameterException", "attributes")
		// Nothing of a failed call is written, even for the target that exists.
		attrWant(t, attrPut(env, "attrs", attr("partial", "1", b), attr("partial", "1", missing)), "TargetNotFoundException")
		if _, ok := attrOf(t, env, "attrs", b)["partial"]; ok {
			t.Error("a failed PutAttributes wrote to the instance that exists")
		}
	})

	t.Run("custom attribute limit", func(t *testing.T) {
		c := attrInstance(t, env, "attrs", "us-east-1c")
		var ten []types.Attribute
		for i := range 10 {
			ten = append(ten, attr(fmt.Sprintf("c%d", i), "v", c))
		}
		attrOK(t, attrPut(env, "attrs", ten...)) // 10 custom + ECS's own attributes: fine
		attrOK(t, attrPut(env, "attrs", attr("c3", "again", c)))
		attrWant(t, attrPut(env, "attrs", attr("c10", "v", c)), "AttributeLimitExceededException")
		attrOK(t, attrDelete(env, "attrs", attr("c0", "", c)))
		attrOK(t, attrPut(env, "attrs", attr("c10", "v", c)))
		if got := attrOf(t, env, "attrs", c); got["c3"] != "again" || got["c10"] != "v" || len(got) < 10 {
			t.Errorf("attributes %v", got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		attrOK(t, attrPut(env, "attrs", attr("gone", "soon", a)))
		out, err := env.ECS.DeleteAttributes(ctx, &awsecs.DeleteAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{
			attr("gone", "", a), attr("never-there", "", attrID(b)),
		}})
		attrOK(t, err)
		if len(out.Attributes) != 2 {
			t.Errorf("response %+v", out.Attributes)
		}
		if _, ok := attrOf(t, env, "attrs", a)["gone"]; ok {
			t.Error("attribute still there after DeleteAttributes")
		}
		if got := attrOf(t, env, "attrs", a)["ecs.availability-zone"]; got != "us-east-1a" {
			t.Errorf("ECS attribute lost: %q", got)
		}
	})

	t.Run("never clobbers the planner's accounting", func(t *testing.T) {
		key := attrScope.ContainerInstanceKey("attrs", attrID(b))
		// Another writer (the planner) charges the instance concurrently with
		// a stream of PutAttributes calls: every charge and every attribute
		// must survive.
		const charges = 20
		var wg sync.WaitGroup
		wg.Add(2)
		errs := make(chan error, 2)
		go func() {
			defer wg.Done()
			for i := 0; i < charges; i++ {
				for {
					e, ok := env.CP.Cache.Snapshot().Get(key)
					if !ok {
						errs <- fmt.Errorf("instance gone")
						return
					}
					cp := *e.Obj.(*resource.ContainerInstance)
					cp.Used.CPU += 10
					cp.Used.Memory += 20
					rev, err := env.CP.Store.Txn(ctx, store.Update(key, resource.Encode(&cp), e.Rev))
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					env.CP.Cache.WaitFor(ctx, rev)
					break
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < charges; i++ {
				if err := attrPut(env, "attrs", attr(fmt.Sprintf("r%d", i%5), fmt.Sprint(i), b)); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		e, _ := env.CP.Cache.Snapshot().Get(key)
		ci := e.Obj.(*resource.ContainerInstance)
		if ci.Used.CPU != charges*10 || ci.Used.Memory != charges*20 {
			t.Errorf("Used = %+v after %d charges", ci.Used, charges)
		}
		got := attrOf(t, env, "attrs", b)
		for i := 15; i < 20; i++ {
			if got[fmt.Sprintf("r%d", i%5)] != fmt.Sprint(i) {
				t.Errorf("attribute r%d = %q", i%5, got[fmt.Sprintf("r%d", i%5)])
			}
		}
	})
}

// Custom attributes put through the API drive placement at once: memberOf
// and spread read them, and ListContainerInstances filters on them.
func TestAttributesDrivePlacement(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	_, err := env.ECS.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("place")})
	attrOK(t, err)
	var arns []string
	for i := range 4 {
		arns = append(arns, attrInstance(t, env, "place", fmt.Sprintf("us-east-1%c", 'a'+i%2)))
	}
	// Two racks, and only instances 0 and 3 are "gpu".
	attrOK(t, attrPut(env, "place",
		attr("rack", "r1", arns[0]), attr("rack", "r1", arns[1]), attr("rack", "r2", arns[2]), attr("rack", "r2", arns[3]),
		attr("gpu", "", arns[0]), attr("gpu", "", arns[3]),
	))
	_, err = env.ECS.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("attrjob"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("busybox"), Memory: aws.Int32(64), Cpu: 16,
		}},
	})
	attrOK(t, err)

	filtered, err := env.ECS.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{Cluster: aws.String("place"), Filter: aws.String("attribute:gpu exists")})
	attrOK(t, err)
	slices.Sort(filtered.ContainerInstanceArns)
	want := []string{arns[0], arns[3]}
	slices.Sort(want)
	if !slices.Equal(filtered.ContainerInstanceArns, want) {
		t.Errorf("filter attribute:gpu exists = %v, want %v", filtered.ContainerInstanceArns, want)
	}

	run, err := env.ECS.RunTask(ctx, &awsecs.RunTaskInput{
		Cluster: aws.String("place"), TaskDefinition: aws.String("attrjob"), Count: aws.Int32(10),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:gpu exists")}},
	})
	attrOK(t, err)
	if len(run.Tasks) != 10 {
		t.Fatalf("memberOf: placed %d, failures %+v", len(run.Tasks), run.Failures)
	}
	for _, tk := range run.Tasks {
		if ci := aws.ToString(tk.ContainerInstanceArn); ci != arns[0] && ci != arns[3] {
			t.Errorf("memberOf(attribute:gpu exists) placed a task on %s", ci)
		}
	}

	// Spread by the custom rack attribute: 10 copies split 5/5.
	run, err = env.ECS.RunTask(ctx, &awsecs.RunTaskInput{
		Cluster: aws.String("place"), TaskDefinition: aws.String("attrjob"), Count: aws.Int32(10), Group: aws.String("spread"),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:rack")}},
	})
	attrOK(t, err)
	perRack := map[string]int{}
	for _, tk := range run.Tasks {
		switch aws.ToString(tk.ContainerInstanceArn) {
		case arns[0], arns[1]:
			perRack["r1"]++
		default:
			perRack["r2"]++
		}
	}
	if perRack["r1"] != 5 || perRack["r2"] != 5 {
		t.Errorf("spread(attribute:rack) = %v, want 5/5", perRack)
	}

	// Moving an instance to another rack changes placement at once.
	attrOK(t, attrDelete(env, "place", attr("gpu", "", arns[0])))
	run, err = env.ECS.RunTask(ctx, &awsecs.RunTaskInput{
		Cluster: aws.String("place"), TaskDefinition: aws.String("attrjob"), Count: aws.Int32(3),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:gpu exists")}},
	})
	attrOK(t, err)
	for _, tk := range run.Tasks {
		if ci := aws.ToString(tk.ContainerInstanceArn); ci != arns[3] {
			t.Errorf("after DeleteAttributes, a task went to %s", ci)
		}
	}
}
