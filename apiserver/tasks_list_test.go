package apiserver_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

func TestListTasksFilters(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "l")
	taskAddInstance(t, env, "l", "i1", taskInst{cpu: 8192, mem: 8192})
	taskAddInstance(t, env, "l", "i2", taskInst{cpu: 8192, mem: 8192})
	taskSmallDef(t, env, "alpha", 0, 64)
	taskSmallDef(t, env, "beta", 0, 64)
	var alpha []string
	for range 3 {
		out, err := env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{Cluster: aws.String("l"), TaskDefinition: aws.String("alpha"), ContainerInstances: []string{"i1"}, StartedBy: aws.String("job-a")})
		if err != nil {
			t.Fatal(err)
		}
		alpha = append(alpha, aws.ToString(out.Tasks[0].TaskArn))
	}
	out, err := env.ECS.StartTask(ctx, &sdkecs.StartTaskInput{Cluster: aws.String("l"), TaskDefinition: aws.String("beta"), ContainerInstances: []string{"i2", "i2"}})
	if err != nil {
		t.Fatal(err)
	}
	beta := []string{aws.ToString(out.Tasks[0].TaskArn), aws.ToString(out.Tasks[1].TaskArn)}
	if _, err := env.ECS.StopTask(ctx, &sdkecs.StopTaskInput{Cluster: aws.String("l"), Task: aws.String(alpha[0])}); err != nil {
		t.Fatal(err)
	}
	list := func(in sdkecs.ListTasksInput) []string {
		t.Helper()
		in.Cluster = aws.String("l")
		var all []string
		for page := 0; page < 20; page++ {
			out, err := env.ECS.ListTasks(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.TaskArns...)
			if out.NextToken == nil {
				slices.Sort(all)
				return all
			}
			in.NextToken = out.NextToken
		}
		t.Fatal("pagination does not end")
		return nil
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	cases := []struct {
		name string
		in   sdkecs.ListTasksInput
		want []string
	}{
		{"running by default", sdkecs.ListTasksInput{}, sorted(alpha[1], alpha[2], beta[0], beta[1])},
		{"stopped", sdkecs.ListTasksInput{DesiredStatus: types.DesiredStatusStopped}, []string{alpha[0]}},
		{"pending lists nothing", sdkecs.ListTasksInput{DesiredStatus: types.DesiredStatusPending}, nil},
		{"family", sdkecs.ListTasksInput{Family: aws.String("beta")}, sorted(beta...)},
		{"startedBy", sdkecs.ListTasksInput{StartedBy: aws.String("job-a")}, sorted(alpha[1], alpha[2])},
		{"startedBy and stopped", sdkecs.ListTasksInput{StartedBy: aws.String("job-a"), DesiredStatus: types.DesiredStatusStopped}, []string{alpha[0]}},
		{"container instance ARN", sdkecs.ListTasksInput{ContainerInstance: aws.String(taskScope.ContainerInstanceARN("l", "i2"))}, sorted(beta...)},
		{"container instance ID", sdkecs.ListTasksInput{ContainerInstance: aws.String("i1")}, sorted(alpha[1], alpha[2])},
		{"launch type", sdkecs.ListTasksInput{LaunchType: types.LaunchTypeExternal}, nil},
		{"pages of one", sdkecs.ListTasksInput{MaxResults: aws.Int32(1)}, sorted(alpha[1], alpha[2], beta[0], beta[1])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		_, err := env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("l"), StartedBy: aws.String("x"), Family: aws.String("alpha")})
		taskWantErr(t, err, "InvalidParameterException", "startedBy")
		_, err = env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("l"), MaxResults: aws.Int32(101)})
		taskWantErr(t, err, "InvalidParameterException", "maxResults")
		_, err = env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("l"), NextToken: aws.String("garbage")})
		taskWantErr(t, err, "InvalidParameterException", "nextToken")
		_, err = env.ECS.ListTasks(ctx, &sdkecs.ListTasksInput{Cluster: aws.String("nope")})
		taskWantErr(t, err, "ClusterNotFoundException", "")
	})
}
