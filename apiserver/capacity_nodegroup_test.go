package apiserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// A node group follows the cluster its provider is associated with, unless
// it has nodes running elsewhere.
func TestNodeGroupFollowsProviderCluster(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		taskCluster(t, env, name)
	}
	mk := func(name string, nodes int) string {
		ng := &resource.NodeGroup{Scope: taskScope, Name: name, ID: "id-" + name, Cluster: "a", Max: 3,
			Template: resource.NodeTemplate{InstanceType: "ecsd.small", CPU: 1024, Memory: 2048}, CreatedAt: time.Now()}
		ng.ARN = taskScope.NodeGroupARN(ng.ID, name)
		for i := 0; i < nodes; i++ {
			ng.Nodes = append(ng.Nodes, resource.Node{ID: name + "-1", State: resource.NodeInService, LaunchedAt: time.Now()})
		}
		taskCommit(t, env, store.Put(taskScope.NodeGroupKey(name), resource.Encode(ng)))
		if _, err := env.ECS.CreateCapacityProvider(ctx, &sdkecs.CreateCapacityProviderInput{Name: aws.String("cp-" + name),
			AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(ng.ARN)}}); err != nil {
			t.Fatal(err)
		}
		return "cp-" + name
	}
	empty, busy := mk("empty", 0), mk("busy", 1)
	if _, err := env.ECS.PutClusterCapacityProviders(ctx, &sdkecs.PutClusterCapacityProvidersInput{Cluster: aws.String("b"),
		CapacityProviders: []string{empty}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}); err != nil {
		t.Fatal(err)
	}
	e, _ := env.CP.Cache.Snapshot().Get(taskScope.NodeGroupKey("empty"))
	if got := e.Obj.(*resource.NodeGroup).Cluster; got != "b" {
		t.Fatalf("empty node group's cluster %q, want b", got)
	}
	_, err := env.ECS.PutClusterCapacityProviders(ctx, &sdkecs.PutClusterCapacityProvidersInput{Cluster: aws.String("b"),
		CapacityProviders: []string{empty, busy}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}})
	taskWantErr(t, err, "InvalidParameterException", "scale the node group to 0")
}
