package apiserver_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/internal/signedpost"
	"github.com/ecsd/ecsd/internal/testenv"
)

// FuzzCapacityOps sends arbitrary bodies to the capacity provider, node
// group and strategy-taking operations of a real server, and to the Spot
// interruption endpoint: whatever the input, the answer is a typed 4xx or a
// 200 — never a 5xx, never a dropped connection.
func FuzzCapacityOps(f *testing.F) {
	env := testenv.Start(f)
	ctx := context.Background()
	if _, err := env.ECS.CreateCluster(ctx, &sdkecs.CreateClusterInput{ClusterName: aws.String("fz"), CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}}); err != nil {
		f.Fatal(err)
	}
	targets := []string{
		ecs.TargetPrefix + ".CreateCapacityProvider",
		ecs.TargetPrefix + ".UpdateCapacityProvider",
		ecs.TargetPrefix + ".DeleteCapacityProvider",
		ecs.TargetPrefix + ".DescribeCapacityProviders",
		ecs.TargetPrefix + ".PutClusterCapacityProviders",
		ecs.TargetPrefix + ".RunTask",
		ecs.TargetPrefix + ".CreateService",
		apiserver.NodeGroupsTargetPrefix + ".CreateNodeGroup",
		apiserver.NodeGroupsTargetPrefix + ".UpdateNodeGroup",
		apiserver.NodeGroupsTargetPrefix + ".DescribeNodeGroups",
		apiserver.NodeGroupsTargetPrefix + ".DeleteNodeGroup",
		"", // the Spot interruption endpoint
	}
	for i, body := range []string{
		`{"name":"cp","autoScalingGroupProvider":{"autoScalingGroupArn":"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/ng","managedScaling":{"status":"ENABLED","targetCapacity":50}}}`,
		`{"name":"cp","autoScalingGroupProvider":{"managedScaling":{"maximumScalingStepSize":0},"managedTerminationProtection":"ENABLED"}}`,
		`{"capacityProvider":"cp"}`,
		`{"capacityProviders":["FARGATE","cp",""],"include":["TAGS"],"maxResults":3,"nextToken":"zz"}`,
		`{"cluster":"fz","capacityProviders":["FARGATE","FARGATE_SPOT","cp"],"defaultCapacityProviderStrategy":[{"capacityProvider":"FARGATE","base":1,"weight":0}]}`,
		`{"cluster":"fz","taskDefinition":"x","count":3,"capacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":1},{"capacityProvider":"FARGATE_SPOT","base":2,"weight":1000}]}`,
		`{"cluster":"fz","serviceName":"s","taskDefinition":"x","desiredCount":2,"capacityProviderStrategy":[{"capacityProvider":"FARGATE_SPOT","weight":1}],"platformVersion":"LATEST"}`,
		`{"name":"ng","cluster":"fz","minSize":0,"maxSize":3,"desiredCapacity":1,"instanceType":"ecsd.small","attributes":{"a":"b"}}`,
		`{"name":"ng","minSize":-1,"maxSize":99999999999,"desiredCapacity":2}`,
		`{"names":["ng","arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/ng",""]}`,
		`{"name":"ng","forceDelete":true}`,
		`{"cluster":"fz","task":"arn:aws:ecs:us-east-1:123456789012:task/fz/0123"}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(0), []byte(`{"name":`))
	f.Add(uint8(7), []byte(`[]`))
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		target := targets[int(which)%len(targets)]
		url := env.URL + "/"
		if target == "" {
			url = env.URL + apiserver.SpotInterruptionPath
		}
		status, out, err := signedpost.Do(ctx, signedpost.Request{URL: url, Target: target, Body: body, Credentials: creds, Region: "us-east-1"})
		if err != nil {
			t.Fatalf("%s %q: %v", target, body, err)
		}
		if status >= 500 {
			t.Fatalf("%s %q: %d %s", target, body, status, out)
		}
	})
}
