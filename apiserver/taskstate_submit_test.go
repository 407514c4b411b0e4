package apiserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

func TestSubmitTaskStateChange(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	taskCluster(t, env, "sc")
	taskAddInstance(t, env, "sc", "i1", taskInst{cpu: 1024, mem: 1024, agent: true, alive: true})
	taskWebDef(t, env)
	out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("sc"), TaskDefinition: aws.String("web")})
	arn := aws.ToString(out.Tasks[0].TaskArn)
	describe := func() types.Task {
		t.Helper()
		d, err := env.ECS.DescribeTasks(ctx, &sdkecs.DescribeTasksInput{Cluster: aws.String("sc"), Tasks: []string{arn}})
		if err != nil || len(d.Tasks) != 1 {
			t.Fatalf("describe: %v %+v", err, d)
		}
		return d.Tasks[0]
	}
	submit := func(in sdkecs.SubmitTaskStateChangeInput) {
		t.Helper()
		in.Cluster, in.Task = aws.String("sc"), aws.String(arn)
		res, err := env.ECS.SubmitTaskStateChange(ctx, &in)
		if err != nil || aws.ToString(res.Acknowledgment) != "ACK" {
			t.Fatalf("submit: %v %+v", err, res)
		}
	}
	pulled := time.Now().Add(-time.Second).Truncate(time.Second)
	submit(sdkecs.SubmitTaskStateChangeInput{
		Status: aws.String("RUNNING"), PullStartedAt: aws.Time(pulled), PullStoppedAt: aws.Time(pulled),
		Containers: []types.ContainerStateChange{{
			ContainerName: aws.String("app"), Status: aws.String("RUNNING"), RuntimeId: aws.String("c0ffee"),
			NetworkBindings: []types.NetworkBinding{{BindIP: aws.String("0.0.0.0"), ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp}},
		}},
	})
	tk := describe()
	if aws.ToString(tk.LastStatus) != "RUNNING" || tk.StartedAt == nil || tk.Version != 2 || !aws.ToTime(tk.PullStartedAt).Equal(pulled) {
		t.Errorf("running: %s startedAt %v version %d pull %v", aws.ToString(tk.LastStatus), tk.StartedAt, tk.Version, tk.PullStartedAt)
	}
	if c := tk.Containers[0]; aws.ToString(c.LastStatus) != "RUNNING" || aws.ToString(c.RuntimeId) != "c0ffee" || len(c.NetworkBindings) != 1 {
		t.Errorf("container %+v", c)
	}
	d, _ := env.ECS.DescribeClusters(ctx, &sdkecs.DescribeClustersInput{Clusters: []string{"sc"}})
	if c := d.Clusters[0]; c.RunningTasksCount != 1 || c.PendingTasksCount != 0 {
		t.Errorf("cluster running %d pending %d", c.RunningTasksCount, c.PendingTasksCount)
	}

	// A stale report is acknowledged and changes nothing.
	submit(sdkecs.SubmitTaskStateChangeInput{Status: aws.String("PENDING")})
	if tk := describe(); aws.ToString(tk.LastStatus) != "RUNNING" || tk.Version != 2 {
		t.Errorf("after stale report: %s version %d", aws.ToString(tk.LastStatus), tk.Version)
	}
	// One container's report.
	if _, err := env.ECS.SubmitContainerStateChange(ctx, &sdkecs.SubmitContainerStateChangeInput{
		Cluster: aws.String("sc"), Task: aws.String(arn), ContainerName: aws.String("app"), Status: aws.String("STOPPED"),
		ExitCode: aws.Int32(3), Reason: aws.String("Essential container in task exited"),
	}); err != nil {
		t.Fatal(err)
	}
	if c := describe().Containers[0]; aws.ToString(c.LastStatus) != "STOPPED" || aws.ToInt32(c.ExitCode) != 3 {
		t.Errorf("container after report: %+v", c)
	}
	submit(sdkecs.SubmitTaskStateChangeInput{Status: aws.String("STOPPED"), Reason: aws.String("Essential container in task exited")})
	tk = describe()
	if aws.ToString(tk.LastStatus) != "STOPPED" || aws.ToString(tk.DesiredStatus) != "STOPPED" || tk.StoppedAt == nil ||
		aws.ToString(tk.StoppedReason) != "Essential container in task exited" {
		t.Errorf("stopped: %s/%s reason %q", aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), aws.ToString(tk.StoppedReason))
	}
	if u := taskUsed(t, env, "sc", "i1"); u.Memory != 0 || u.CPU != 0 || len(u.TCPPorts) != 0 {
		t.Errorf("not released: %+v", u)
	}
	// The port is free again.
	if out := taskRun(t, env, &sdkecs.RunTaskInput{Cluster: aws.String("sc"), TaskDefinition: aws.String("web")}); len(out.Tasks) != 1 {
		t.Errorf("rerun: %v", taskFailureReasons(out.Failures))
	}

	t.Run("errors", func(t *testing.T) {
		_, err := env.ECS.SubmitTaskStateChange(ctx, &sdkecs.SubmitTaskStateChangeInput{Cluster: aws.String("sc"), Task: aws.String("0123456789abcdef0123456789abcdef"), Status: aws.String("RUNNING")})
		taskWantErr(t, err, "InvalidParameterException", "not found")
		_, err = env.ECS.SubmitTaskStateChange(ctx, &sdkecs.SubmitTaskStateChangeInput{Cluster: aws.String("sc"), Task: aws.String(arn), Status: aws.String("DANCING")})
		taskWantErr(t, err, "InvalidParameterException", "status")
		_, err = env.ECS.SubmitAttachmentStateChanges(ctx, &sdkecs.SubmitAttachmentStateChangesInput{Cluster: aws.String("sc"),
			Attachments: []types.AttachmentStateChange{{AttachmentArn: aws.String("arn:aws:ecs:us-east-1:123456789012:attachment/none"), Status: aws.String("ATTACHED")}}})
		taskWantErr(t, err, "InvalidParameterException", "attachment")
	})
}
