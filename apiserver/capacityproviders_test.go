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
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	wire "github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

var cpScope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

const cpARNPrefix = "arn:aws:ecs:us-east-1:123456789012:capacity-provider/"

func cpWant(t *testing.T, err error, code string, parts ...string) {
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

// cpPut writes a record straight into the store (what other components,
// e.g. `ecsd nodegroup create` or a task launch, would have stored) and waits
// until the API's cache shows it.
func cpPut(t *testing.T, env *testenv.Env, key string, v any) {
	t.Helper()
	ctx := context.Background()
	rev, err := env.CP.Store.Txn(ctx, store.Put(key, resource.Encode(v)))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := env.CP.Cache.WaitFor(wctx, rev); err != nil {
		t.Fatal(err)
	}
}

// cpNodeGroup stores a node group and returns its ARN.
func cpNodeGroup(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	id := fmt.Sprintf("%08x-0000-4000-8000-000000000000", len(name)*7919+int(name[len(name)-1]))
	ng := resource.NodeGroup{Scope: cpScope, Name: name, ID: id, ARN: cpScope.NodeGroupARN(id, name), Cluster: "default",
		Max: 3, Template: resource.NodeTemplate{InstanceType: "t3.small", CPU: 2048, Memory: 2048}, CreatedAt: time.Now().UTC()}
	cpPut(t, env, cpScope.NodeGroupKey(name), &ng)
	return ng.ARN
}

func cpCreate(env *testenv.Env, name, asgARN string) (*types.CapacityProvider, error) {
	out, err := env.ECS.CreateCapacityProvider(context.Background(), &ecs.CreateCapacityProviderInput{
		Name: aws.String(name), AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(asgARN)},
	})
	if err != nil {
		return nil, err
	}
	return out.CapacityProvider, nil
}

func cpDescribe(t *testing.T, env *testenv.Env, in *ecs.DescribeCapacityProvidersInput) *ecs.DescribeCapacityProvidersOutput {
	t.Helper()
	out, err := env.ECS.DescribeCapacityProviders(context.Background(), in)
	if err != nil {
		t.Fatalf("describe capacity providers: %v", err)
	}
	return out
}

func cpNames(ps []types.CapacityProvider) []string {
	var out []string
	for _, p := range ps {
		out = append(out, aws.ToString(p.Name))
	}
	return out
}

func TestCapacityProviderCreate(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ng1 := cpNodeGroup(t, env, "ng1")
	cpNodeGroup(t, env, "ng2")

	t.Run("defaults", func(t *testing.T) {
		p, err := cpCreate(env, "cp1", ng1)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(p.CapacityProviderArn) != cpARNPrefix+"cp1" || aws.ToString(p.Name) != "cp1" ||
			p.Status != types.CapacityProviderStatusActive || p.Type != types.CapacityProviderTypeEc2Autoscaling {
			t.Fatalf("created: %+v", p)
		}
		a := p.AutoScalingGroupProvider
		ms := a.ManagedScaling
		if aws.ToString(a.AutoScalingGroupArn) != ng1 || a.ManagedTerminationProtection != types.ManagedTerminationProtectionDisabled ||
			a.ManagedDraining != types.ManagedDrainingEnabled || ms == nil || ms.Status != types.ManagedScalingStatusDisabled ||
			aws.ToInt32(ms.TargetCapacity) != 100 || aws.ToInt32(ms.MinimumScalingStepSize) != 1 ||
			aws.ToInt32(ms.MaximumScalingStepSize) != 10000 || aws.ToInt32(ms.InstanceWarmupPeriod) != 300 {
			t.Fatalf("defaults: %+v %+v", a, ms)
		}
		if p.Tags == nil || len(p.Tags) != 0 {
			t.Errorf("create answers tags [] when none: %v", p.Tags)
		}
	})

	t.Run("full", func(t *testing.T) {
		out, err := env.ECS.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{
			Name: aws.String("cp-full"),
			AutoScalingGroupProvider: &types.AutoScalingGroupProvider{
				AutoScalingGroupArn: aws.String("ng2"), // a bare group name works too
				ManagedScaling: &types.ManagedScaling{Status: types.ManagedScalingStatusEnabled, TargetCapacity: aws.Int32(80),
					MinimumScalingStepSize: aws.Int32(2), MaximumScalingStepSize: aws.Int32(5), InstanceWarmupPeriod: aws.Int32(0)},
				ManagedTerminationProtection: types.ManagedTerminationProtectionEnabled,
				ManagedDraining:              types.ManagedDrainingDisabled,
			},
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("infra")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		a := out.CapacityProvider.AutoScalingGroupProvider
		if aws.ToString(a.AutoScalingGroupArn) != "ng2" || a.ManagedTerminationProtection != types.ManagedTerminationProtectionEnabled ||
			a.ManagedDraining != types.ManagedDrainingDisabled || aws.ToInt32(a.ManagedScaling.TargetCapacity) != 80 ||
			aws.ToInt32(a.ManagedScaling.InstanceWarmupPeriod) != 0 || len(out.CapacityProvider.Tags) != 1 {
			t.Fatalf("full: %+v %+v", a, a.ManagedScaling)
		}
	})

	t.Run("validation", func(t *testing.T) {
		ng3 := cpNodeGroup(t, env, "ng3")
		ms := func(f func(*types.ManagedScaling)) *types.AutoScalingGroupProvider {
			m := &types.ManagedScaling{Status: types.ManagedScalingStatusEnabled}
			f(m)
			return &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(ng3), ManagedScaling: m}
		}
		cases := []struct {
			name  string
			in    ecs.CreateCapacityProviderInput
			code  string
			parts []string
		}{
			{"prefix aws", ecs.CreateCapacityProviderInput{Name: aws.String("aws-cp")}, "ClientException", []string{"name"}},
			{"prefix ECS any case", ecs.CreateCapacityProviderInput{Name: aws.String("ECSpool")}, "ClientException", []string{"name"}},
			{"prefix Fargate", ecs.CreateCapacityProviderInput{Name: aws.String("Fargate2")}, "ClientException", []string{"name"}},
			{"bad characters", ecs.CreateCapacityProviderInput{Name: aws.String("my pool")}, "ClientException", []string{"name"}},
			{"too long", ecs.CreateCapacityProviderInput{Name: aws.String(strings.Repeat("p", 256))}, "ClientException", []string{"name"}},
			{"no asg provider", ecs.CreateCapacityProviderInput{Name: aws.String("cpx")}, "InvalidParameterException", []string{"autoScalingGroupProvider"}},
			{"unknown node group", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(cpScope.NodeGroupARN("x", "nope"))}},
				"InvalidParameterException", []string{"autoScalingGroupArn", "ecsd nodegroup create"}},
			{"not an asg arn", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/x")}},
				"InvalidParameterException", []string{"autoScalingGroupArn"}},
			{"other region", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(strings.Replace(ng3, "us-east-1", "eu-west-1", 1))}},
				"InvalidParameterException", []string{"autoScalingGroupArn", "eu-west-1"}},
			{"node group taken", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(ng1)}},
				"ClientException", []string{"ng1", "cp1"}},
			{"name exists", ecs.CreateCapacityProviderInput{Name: aws.String("cp1"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(ng3)}},
				"ClientException", []string{"already exists"}},
			{"termination protection without scaling", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"),
				AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(ng3), ManagedTerminationProtection: types.ManagedTerminationProtectionEnabled}},
				"ClientException", []string{"managedTerminationProtection"}},
			{"target 0", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) { m.TargetCapacity = aws.Int32(0) })},
				"InvalidParameterException", []string{"targetCapacity"}},
			{"target 101", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) { m.TargetCapacity = aws.Int32(101) })},
				"InvalidParameterException", []string{"targetCapacity"}},
			{"min step 0", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) { m.MinimumScalingStepSize = aws.Int32(0) })},
				"InvalidParameterException", []string{"minimumScalingStepSize"}},
			{"max step 10001", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) { m.MaximumScalingStepSize = aws.Int32(10001) })},
				"InvalidParameterException", []string{"maximumScalingStepSize"}},
			{"min above max", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) {
				m.MinimumScalingStepSize, m.MaximumScalingStepSize = aws.Int32(5), aws.Int32(2)
			})}, "InvalidParameterException", []string{"minimumScalingStepSize"}},
			{"warmup 10001", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(m *types.ManagedScaling) { m.InstanceWarmupPeriod = aws.Int32(10001) })},
				"InvalidParameterException", []string{"instanceWarmupPeriod"}},
			{"reserved tag", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), AutoScalingGroupProvider: ms(func(*types.ManagedScaling) {}),
				Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}}, "InvalidParameterException", []string{"tags[0].key"}},
			{"managed instances", ecs.CreateCapacityProviderInput{Name: aws.String("cpx"), ManagedInstancesProvider: &types.CreateManagedInstancesProviderConfiguration{
				InfrastructureRoleArn: aws.String("arn:aws:iam::123456789012:role/x"), InstanceLaunchTemplate: &types.InstanceLaunchTemplate{
					Ec2InstanceProfileArn: aws.String("arn:aws:iam::123456789012:instance-profile/x"),
					NetworkConfiguration:  &types.ManagedInstancesNetworkConfiguration{Subnets: []string{"subnet-1"}}}}},
				"UnsupportedFeatureException", []string{"managedInstancesProvider"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				_, err := env.ECS.CreateCapacityProvider(ctx, &in)
				cpWant(t, err, tc.code, tc.parts...)
			})
		}
		// Nothing of the refused creates was stored.
		out := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"cpx"}})
		if len(out.CapacityProviders) != 0 || len(out.Failures) != 1 {
			t.Fatalf("cpx after refused creates: %+v", out)
		}
	})
}

func TestCapacityProviderDescribe(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	for _, n := range []string{"b-cp", "a-cp", "c-cp"} {
		if _, err := cpCreate(env, n, cpNodeGroup(t, env, "ng-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.ECS.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(cpARNPrefix + "a-cp"),
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}

	t.Run("all", func(t *testing.T) {
		out := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{})
		if got, want := cpNames(out.CapacityProviders), []string{"FARGATE", "FARGATE_SPOT", "a-cp", "b-cp", "c-cp"}; !slices.Equal(got, want) {
			t.Fatalf("describe all: %v, want %v", got, want)
		}
		f := out.CapacityProviders[0]
		if aws.ToString(f.CapacityProviderArn) != cpARNPrefix+"FARGATE" || f.Status != types.CapacityProviderStatusActive ||
			f.Type != types.CapacityProviderTypeFargate || f.AutoScalingGroupProvider != nil || f.Tags != nil {
			t.Errorf("FARGATE: %+v", f)
		}
		if out.CapacityProviders[1].Type != types.CapacityProviderTypeFargateSpot {
			t.Errorf("FARGATE_SPOT type: %q", out.CapacityProviders[1].Type)
		}
		if out.CapacityProviders[2].Tags != nil {
			t.Errorf("tags only when included: %v", out.CapacityProviders[2].Tags)
		}
		if out.NextToken != nil {
			t.Errorf("one page: nextToken %q", aws.ToString(out.NextToken))
		}
	})

	t.Run("pages", func(t *testing.T) {
		var got []string
		var tok *string
		for pages := 0; ; pages++ {
			if pages > 6 {
				t.Fatal("pagination does not end")
			}
			out := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{MaxResults: aws.Int32(2), NextToken: tok})
			if len(out.CapacityProviders) > 2 {
				t.Fatalf("page of %d", len(out.CapacityProviders))
			}
			got = append(got, cpNames(out.CapacityProviders)...)
			if tok = out.NextToken; tok == nil {
				break
			}
		}
		if want := []string{"FARGATE", "FARGATE_SPOT", "a-cp", "b-cp", "c-cp"}; !slices.Equal(got, want) {
			t.Fatalf("pages: %v, want %v", got, want)
		}
		_, err := env.ECS.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{MaxResults: aws.Int32(11)})
		cpWant(t, err, "InvalidParameterException", "maxResults")
		_, err = env.ECS.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{NextToken: aws.String("garbage")})
		cpWant(t, err, "InvalidParameterException", "nextToken")
	})

	t.Run("named", func(t *testing.T) {
		out := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{
			CapacityProviders: []string{"c-cp", cpARNPrefix + "a-cp", "FARGATE_SPOT", "nope", "arn:aws:ecs:eu-west-1:123456789012:capacity-provider/b-cp"},
			Include:           []types.CapacityProviderField{types.CapacityProviderFieldTags},
		})
		if got, want := cpNames(out.CapacityProviders), []string{"c-cp", "a-cp", "FARGATE_SPOT"}; !slices.Equal(got, want) {
			t.Fatalf("named: %v, want %v", got, want)
		}
		if tags := out.CapacityProviders[1].Tags; len(tags) != 1 || aws.ToString(tags[0].Key) != "k" {
			t.Errorf("include TAGS: %+v", tags)
		}
		if tags := out.CapacityProviders[0].Tags; tags == nil || len(tags) != 0 {
			t.Errorf("include TAGS without tags is []: %v", tags)
		}
		if len(out.Failures) != 2 || aws.ToString(out.Failures[0].Arn) != cpARNPrefix+"nope" || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
			aws.ToString(out.Failures[1].Reason) != "MISSING" {
			t.Errorf("failures: %+v", out.Failures)
		}
		// Named lists page too, when asked.
		p1 := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"a-cp", "b-cp", "c-cp"}, MaxResults: aws.Int32(2)})
		p2 := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"a-cp", "b-cp", "c-cp"}, MaxResults: aws.Int32(2), NextToken: p1.NextToken})
		if !slices.Equal(cpNames(p1.CapacityProviders), []string{"a-cp", "b-cp"}) || !slices.Equal(cpNames(p2.CapacityProviders), []string{"c-cp"}) || p2.NextToken != nil {
			t.Errorf("named pages: %v / %v", cpNames(p1.CapacityProviders), cpNames(p2.CapacityProviders))
		}
	})

	t.Run("cluster", func(t *testing.T) {
		if _, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("cpd"), CapacityProviders: []string{"FARGATE", "b-cp"}}); err != nil {
			t.Fatal(err)
		}
		out := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{Cluster: aws.String("cpd")})
		if got := cpNames(out.CapacityProviders); !slices.Equal(got, []string{"FARGATE", "b-cp"}) {
			t.Fatalf("cluster's providers: %v", got)
		}
		_, err := env.ECS.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{Cluster: aws.String("nocluster")})
		cpWant(t, err, "ClusterNotFoundException")
	})
}

func TestCapacityProviderUpdate(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if _, err := cpCreate(env, "up", cpNodeGroup(t, env, "ng-up")); err != nil {
		t.Fatal(err)
	}
	out, err := env.ECS.UpdateCapacityProvider(ctx, &ecs.UpdateCapacityProviderInput{Name: aws.String("up"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProviderUpdate{
			ManagedScaling:               &types.ManagedScaling{Status: types.ManagedScalingStatusEnabled, TargetCapacity: aws.Int32(75)},
			ManagedTerminationProtection: types.ManagedTerminationProtectionEnabled,
			ManagedDraining:              types.ManagedDrainingDisabled,
		}})
	if err != nil {
		t.Fatal(err)
	}
	p := out.CapacityProvider
	ms := p.AutoScalingGroupProvider.ManagedScaling
	if p.UpdateStatus != types.CapacityProviderUpdateStatusUpdateComplete || ms.Status != types.ManagedScalingStatusEnabled ||
		aws.ToInt32(ms.TargetCapacity) != 75 || aws.ToInt32(ms.MaximumScalingStepSize) != 10000 ||
		p.AutoScalingGroupProvider.ManagedTerminationProtection != types.ManagedTerminationProtectionEnabled ||
		p.AutoScalingGroupProvider.ManagedDraining != types.ManagedDrainingDisabled {
		t.Fatalf("updated: %+v %+v", p, ms)
	}
	d := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{cpARNPrefix + "up"}})
	if aws.ToInt32(d.CapacityProviders[0].AutoScalingGroupProvider.ManagedScaling.TargetCapacity) != 75 {
		t.Fatalf("update not stored: %+v", d.CapacityProviders[0])
	}

	upd := func(name string, u *types.AutoScalingGroupProviderUpdate) error {
		_, err := env.ECS.UpdateCapacityProvider(ctx, &ecs.UpdateCapacityProviderInput{Name: aws.String(name), AutoScalingGroupProvider: u})
		return err
	}
	// Turning managed scaling off while termination protection is on is refused.
	cpWant(t, upd("up", &types.AutoScalingGroupProviderUpdate{ManagedScaling: &types.ManagedScaling{Status: types.ManagedScalingStatusDisabled}}),
		"ClientException", "managedTerminationProtection")
	cpWant(t, upd("up", &types.AutoScalingGroupProviderUpdate{ManagedScaling: &types.ManagedScaling{TargetCapacity: aws.Int32(0)}}),
		"InvalidParameterException", "targetCapacity")
	cpWant(t, upd("up", &types.AutoScalingGroupProviderUpdate{ManagedScaling: &types.ManagedScaling{MinimumScalingStepSize: aws.Int32(10001)}}),
		"InvalidParameterException", "minimumScalingStepSize")
	cpWant(t, upd("nope", &types.AutoScalingGroupProviderUpdate{ManagedDraining: types.ManagedDrainingEnabled}), "ClientException", "nope")
	cpWant(t, upd("FARGATE", &types.AutoScalingGroupProviderUpdate{ManagedDraining: types.ManagedDrainingEnabled}), "ClientException", "FARGATE")
	cpWant(t, upd("up", nil), "InvalidParameterException", "autoScalingGroupProvider")
	// Both together are fine, and the refused updates changed nothing.
	if err := upd("up", &types.AutoScalingGroupProviderUpdate{ManagedScaling: &types.ManagedScaling{Status: types.ManagedScalingStatusDisabled},
		ManagedTerminationProtection: types.ManagedTerminationProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	d = cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"up"}})
	if ms := d.CapacityProviders[0].AutoScalingGroupProvider.ManagedScaling; ms.Status != types.ManagedScalingStatusDisabled || aws.ToInt32(ms.TargetCapacity) != 75 {
		t.Fatalf("after updates: %+v", ms)
	}
}

func TestCapacityProviderDelete(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ng := cpNodeGroup(t, env, "ng-del")
	if _, err := cpCreate(env, "del", ng); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("delc"), CapacityProviders: []string{"del"}}); err != nil {
		t.Fatal(err)
	}
	del := func(ref string) (*types.CapacityProvider, error) {
		out, err := env.ECS.DeleteCapacityProvider(ctx, &ecs.DeleteCapacityProviderInput{CapacityProvider: aws.String(ref)})
		if err != nil {
			return nil, err
		}
		return out.CapacityProvider, nil
	}

	// Associated with a cluster: ECS answers with DELETE_FAILED and the reason,
	// the provider stays ACTIVE.
	p, err := del("del")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != types.CapacityProviderStatusActive || p.UpdateStatus != types.CapacityProviderUpdateStatusDeleteFailed ||
		!strings.Contains(aws.ToString(p.UpdateStatusReason), "delc") {
		t.Fatalf("delete while associated: %+v", p)
	}
	d := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"del"}})
	if d.CapacityProviders[0].UpdateStatus != types.CapacityProviderUpdateStatusDeleteFailed {
		t.Fatalf("DELETE_FAILED is kept: %+v", d.CapacityProviders[0])
	}

	if _, err := env.ECS.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("delc"),
		CapacityProviders: []string{}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}); err != nil {
		t.Fatal(err)
	}
	p, err = del(cpARNPrefix + "del")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != types.CapacityProviderStatusInactive || p.UpdateStatus != types.CapacityProviderUpdateStatusDeleteComplete || p.UpdateStatusReason != nil {
		t.Fatalf("deleted: %+v", p)
	}
	d = cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"del"}})
	if len(d.CapacityProviders) != 1 || d.CapacityProviders[0].Status != types.CapacityProviderStatusInactive {
		t.Fatalf("a deleted provider stays describable by name: %+v", d)
	}
	if all := cpNames(cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{}).CapacityProviders); slices.Contains(all, "del") {
		t.Fatalf("describe-all lists INACTIVE providers: %v", all)
	}
	_, err = del("del")
	cpWant(t, err, "ClientException", "del")
	_, err = del("FARGATE")
	cpWant(t, err, "ClientException", "FARGATE")
	_, err = del("FARGATE_SPOT")
	cpWant(t, err, "ClientException", "FARGATE_SPOT")
	_, err = del("never")
	cpWant(t, err, "ClientException", "never")
	// An INACTIVE provider cannot be associated.
	_, err = env.ECS.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("delc"),
		CapacityProviders: []string{"del"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}})
	cpWant(t, err, "InvalidParameterException", "del")

	// The name and the node group are free again.
	p, err = cpCreate(env, "del", ng)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != types.CapacityProviderStatusActive || p.UpdateStatus != "" {
		t.Fatalf("recreated: %+v", p)
	}
}

func TestCapacityProviderTags(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if _, err := env.ECS.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("tagged"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(cpNodeGroup(t, env, "ng-tag"))},
		Tags:                     []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}}); err != nil {
		t.Fatal(err)
	}
	arn := aws.String(cpARNPrefix + "tagged")
	if _, err := env.ECS.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ECS.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := env.ECS.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tags) != 1 || aws.ToString(lt.Tags[0].Key) != "b" {
		t.Fatalf("tags: %+v", lt.Tags)
	}
	d := cpDescribe(t, env, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"tagged"}, Include: []types.CapacityProviderField{types.CapacityProviderFieldTags}})
	if tags := d.CapacityProviders[0].Tags; len(tags) != 1 || aws.ToString(tags[0].Value) != "2" {
		t.Fatalf("describe tags: %+v", tags)
	}
	_, err = env.ECS.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(cpARNPrefix + "missing")})
	cpWant(t, err, "ResourceNotFoundException")
}

// Concurrent creates: of one name, exactly one wins and the others are told it
// exists; of one node group under different names, exactly one wins.
func TestCapacityProviderConcurrentCreate(t *testing.T) {
	env := testenv.Start(t)
	const n = 6
	var arns []string
	for i := range n {
		arns = append(arns, cpNodeGroup(t, env, fmt.Sprintf("ngc%d", i)))
	}
	race := func(name func(i int) string, group func(i int) string) (wins int, errs []error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := cpCreate(env, name(i), group(i))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		return wins, errs
	}
	wins, errs := race(func(int) string { return "same" }, func(i int) string { return arns[i] })
	if wins != 1 {
		t.Fatalf("same name: %d creates succeeded; errors %v", wins, errs)
	}
	for _, err := range errs {
		cpWant(t, err, "ClientException", "already exists")
	}
	shared := cpNodeGroup(t, env, "ng-shared")
	wins, errs = race(func(i int) string { return fmt.Sprintf("shared%d", i) }, func(int) string { return shared })
	if wins != 1 {
		t.Fatalf("same node group: %d creates succeeded; errors %v", wins, errs)
	}
	for _, err := range errs {
		cpWant(t, err, "ClientException", "ng-shared")
	}
}

func TestClusterCapacityProvidersPut(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	for _, n := range []string{"cpa", "cpb"} {
		if _, err := cpCreate(env, n, cpNodeGroup(t, env, "ng-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"c1", "c2"} {
		if _, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	item := func(p string, base, weight int32) types.CapacityProviderStrategyItem {
		return types.CapacityProviderStrategyItem{CapacityProvider: aws.String(p), Base: base, Weight: weight}
	}
	put := func(cluster string, providers []string, strategy ...types.CapacityProviderStrategyItem) (*types.Cluster, error) {
		if strategy == nil {
			strategy = []types.CapacityProviderStrategyItem{}
		}
		out, err := env.ECS.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String(cluster),
			CapacityProviders: providers, DefaultCapacityProviderStrategy: strategy})
		if err != nil {
			return nil, err
		}
		return out.Cluster, nil
	}

	t.Run("put and describe", func(t *testing.T) {
		c, err := put("c1", []string{"FARGATE", "FARGATE_SPOT", "cpa"}, item("FARGATE", 1, 1), item("FARGATE_SPOT", 0, 3))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.CapacityProviders, []string{"FARGATE", "FARGATE_SPOT", "cpa"}) || len(c.DefaultCapacityProviderStrategy) != 2 {
			t.Fatalf("put answer: %v %+v", c.CapacityProviders, c.DefaultCapacityProviderStrategy)
		}
		dc, err := env.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"c1"}})
		if err != nil {
			t.Fatal(err)
		}
		got := dc.Clusters[0]
		if !slices.Equal(got.CapacityProviders, c.CapacityProviders) || got.DefaultCapacityProviderStrategy[1].Weight != 3 ||
			aws.ToString(got.DefaultCapacityProviderStrategy[0].CapacityProvider) != "FARGATE" {
			t.Fatalf("described: %v %+v", got.CapacityProviders, got.DefaultCapacityProviderStrategy)
		}
		// ECS takes a default strategy with no positive weight (it fails only
		// when a service or task falls back to it).
		c, err = put("c1", []string{"FARGATE", "cpa"}, item("FARGATE", 2, 0))
		if err != nil {
			t.Fatalf("all-zero weights in a default strategy: %v", err)
		}
		if s := c.DefaultCapacityProviderStrategy; len(s) != 1 || s[0].Base != 2 || s[0].Weight != 0 {
			t.Fatalf("stored strategy: %+v", s)
		}
		// The same put again is fine (cpa stays with c1).
		if _, err := put(clusterARNPrefix+"c1", []string{"FARGATE", "FARGATE_SPOT", "cpa"}, item("cpa", 0, 1)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			name      string
			cluster   string
			providers []string
			strategy  []types.CapacityProviderStrategyItem
			code      string
			parts     []string
		}{
			{"unknown provider", "c2", []string{"nope"}, nil, "InvalidParameterException", []string{"capacityProviders[0]", "nope"}},
			{"taken by another cluster", "c2", []string{"cpa"}, nil, "InvalidParameterException", []string{"cpa", "c1"}},
			{"strategy outside list", "c2", []string{"FARGATE"}, []types.CapacityProviderStrategyItem{item("FARGATE_SPOT", 0, 1)},
				"InvalidParameterException", []string{"defaultCapacityProviderStrategy[0].capacityProvider"}},
			{"mixed fargate and node group", "c2", []string{"FARGATE", "cpb"}, []types.CapacityProviderStrategyItem{item("FARGATE", 0, 1), item("cpb", 0, 1)},
				"InvalidParameterException", []string{"defaultCapacityProviderStrategy"}},
			{"two bases", "c2", []string{"FARGATE", "FARGATE_SPOT"}, []types.CapacityProviderStrategyItem{item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 1)},
				"InvalidParameterException", []string{"base"}},
			{"duplicate", "c2", []string{"FARGATE", "FARGATE"}, nil, "InvalidParameterException", []string{"capacityProviders[1]"}},
			{"missing cluster", "nocluster", []string{"FARGATE"}, nil, "ClusterNotFoundException", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := put(tc.cluster, tc.providers, tc.strategy...)
				cpWant(t, err, tc.code, tc.parts...)
			})
		}
		dc, _ := env.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"c2"}})
		if len(dc.Clusters[0].CapacityProviders) != 0 {
			t.Fatalf("refused puts changed c2: %v", dc.Clusters[0].CapacityProviders)
		}
	})

	t.Run("in use", func(t *testing.T) {
		if _, err := put("c2", []string{"cpb", "FARGATE"}, item("cpb", 0, 1)); err != nil {
			t.Fatal(err)
		}
		task := &resource.Task{Task: wire.Task{TaskArn: cpScope.TaskARN("c2", "t1"), LastStatus: "RUNNING", CapacityProviderName: "cpb"},
			Scope: cpScope, Cluster: "c2", ID: "t1"}
		cpPut(t, env, cpScope.TaskKey("c2", "t1"), task)
		_, err := put("c2", []string{"FARGATE"})
		cpWant(t, err, "ResourceInUseException", "cpb")
		task.LastStatus = "STOPPED"
		cpPut(t, env, cpScope.TaskKey("c2", "t1"), task)

		svc := &resource.Service{Service: wire.Service{ServiceName: "web", Status: "ACTIVE",
			CapacityProviderStrategy: []wire.CapacityProviderStrategyItem{{CapacityProvider: "FARGATE", Weight: 1}}}, Scope: cpScope, Cluster: "c2"}
		cpPut(t, env, cpScope.ServiceKey("c2", "web"), svc)
		_, err = put("c2", []string{"cpb"})
		cpWant(t, err, "ResourceInUseException", "FARGATE", "web")
		// Keeping what is used is fine; dropping what is not is fine.
		if _, err := put("c2", []string{"FARGATE"}); err != nil {
			t.Fatalf("drop cpb once its task stopped: %v", err)
		}
		svc.Status = "INACTIVE"
		cpPut(t, env, cpScope.ServiceKey("c2", "web"), svc)
		if _, err := put("c2", []string{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("create cluster", func(t *testing.T) {
		_, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c3"), CapacityProviders: []string{"ghost"}})
		cpWant(t, err, "InvalidParameterException", "capacityProviders[0]", "ghost")
		_, err = env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c3"), CapacityProviders: []string{"cpa"}})
		cpWant(t, err, "InvalidParameterException", "cpa", "c1")
		out, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c3"), CapacityProviders: []string{"cpb", "FARGATE"},
			DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{item("cpb", 2, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.Cluster.CapacityProviders, []string{"cpb", "FARGATE"}) || out.Cluster.DefaultCapacityProviderStrategy[0].Base != 2 {
			t.Fatalf("create cluster: %v %+v", out.Cluster.CapacityProviders, out.Cluster.DefaultCapacityProviderStrategy)
		}
		// Deleting the cluster frees its providers.
		if _, err := env.ECS.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("c3")}); err != nil {
			t.Fatal(err)
		}
		if _, err := put("c2", []string{"cpb"}); err != nil {
			t.Fatalf("cpb after its cluster was deleted: %v", err)
		}
	})

	t.Run("concurrent association", func(t *testing.T) {
		if _, err := cpCreate(env, "cpr", cpNodeGroup(t, env, "ng-cpr")); err != nil {
			t.Fatal(err)
		}
		clusters := []string{"r1", "r2", "r3", "r4"}
		for _, n := range clusters {
			if _, err := env.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(n)}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(clusters))
		for i, n := range clusters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = put(n, []string{"cpr"})
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			cpWant(t, err, "InvalidParameterException", "cpr")
		}
		if wins != 1 {
			t.Fatalf("%d clusters got cpr: %v", wins, errs)
		}
	})
}
