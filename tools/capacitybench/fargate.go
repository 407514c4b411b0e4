package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

const fargateFamily = "capbench-fargate"

type fargateResults struct {
	Runtime string // the pool agent's --fargate-runtime
	// Runtimes seen by `docker inspect` on the warm-up tasks' app containers.
	EC2Runtime, FargateRuntime string
	EC2, Fargate               []float64 // RunTask → RUNNING, ms
	EC2Stop, FargateStop       []float64 // StopTask → STOPPED, ms
}

type fargateBench struct {
	c   config
	ecs *ecs.Client
}

func benchFargate(ctx context.Context, c config, client *ecs.Client) (*fargateResults, error) {
	b := &fargateBench{c: c, ecs: client}
	if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(fargateFamily),
		NetworkMode:             types.NetworkModeAwsvpc,
		Cpu:                     aws.String("256"),
		Memory:                  aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(c.image), Essential: aws.Bool(true),
			Command:         []string{"sleep", "600"},
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
		}},
	}); err != nil {
		return nil, fmt.Errorf("RegisterTaskDefinition: %w", err)
	}
	res := &fargateResults{Runtime: c.runtime}

	// Warm-up, and the runtime check: the agents may still be joining, so the
	// first task of each launch type is retried for a while.
	for _, lt := range []types.LaunchType{types.LaunchTypeFargate, types.LaunchTypeEc2} {
		dst := &res.FargateRuntime
		if lt == types.LaunchTypeEc2 {
			dst = &res.EC2Runtime
		}
		if _, err := pollUntil(ctx, 250*time.Millisecond, 60*time.Second, string(lt)+" task accepted (agent joined)", func() (bool, error) {
			if _, _, err := b.one(ctx, lt, func(arn string) { *dst = containerRuntime(ctx, arn) }); err != nil {
				logf("%s warm-up: %v", lt, err)
				return false, nil
			}
			return true, nil
		}); err != nil {
			return nil, err
		}
	}
	for w := 1; w < c.warmup; w++ {
		for _, lt := range []types.LaunchType{types.LaunchTypeFargate, types.LaunchTypeEc2} {
			if _, _, err := b.one(ctx, lt, nil); err != nil {
				return nil, fmt.Errorf("%s warm-up: %w", lt, err)
			}
		}
	}
	logf("fargate: runtime flag %q; app containers run under %q (FARGATE) and %q (EC2)", c.runtime, res.FargateRuntime, res.EC2Runtime)

	for i := range c.samples {
		order := []types.LaunchType{types.LaunchTypeEc2, types.LaunchTypeFargate}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, lt := range order {
			lat, stop, err := b.one(ctx, lt, nil)
			if err != nil {
				return res, fmt.Errorf("%s sample %d: %w", lt, i+1, err)
			}
			if lt == types.LaunchTypeFargate {
				res.Fargate, res.FargateStop = append(res.Fargate, lat), append(res.FargateStop, stop)
			} else {
				res.EC2, res.EC2Stop = append(res.EC2, lat), append(res.EC2Stop, stop)
			}
		}
		logf("fargate %d/%d: EC2 %.0f ms, FARGATE %.0f ms", i+1, c.samples, res.EC2[i], res.Fargate[i])
	}
	return res, nil
}

// one runs a task of launch type lt, times RunTask → RUNNING, calls running
// (if set) while it runs, then stops it and times StopTask → STOPPED.
func (b *fargateBench) one(ctx context.Context, lt types.LaunchType, running func(arn string)) (float64, float64, error) {
	start := time.Now()
	out, err := b.ecs.RunTask(ctx, &ecs.RunTaskInput{
		TaskDefinition: aws.String(fargateFamily), LaunchType: lt,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: []string{"subnet-0123456789abcdef0"}}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return 0, 0, fmt.Errorf("RunTask: no task (failures %+v)", out.Failures)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	seen, werr := pollUntil(ctx, b.c.poll, 60*time.Second, "task RUNNING", func() (bool, error) {
		d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}})
		if err != nil || len(d.Tasks) != 1 {
			return false, nil
		}
		switch aws.ToString(d.Tasks[0].LastStatus) {
		case "RUNNING":
			noteInstance(b.c, aws.ToString(d.Tasks[0].ContainerInstanceArn))
			return true, nil
		case "STOPPED":
			return false, fmt.Errorf("task stopped: %s", aws.ToString(d.Tasks[0].StoppedReason))
		}
		return false, nil
	})
	lat := ms(seen.Sub(start))
	if werr == nil && running != nil {
		running(arn)
	}
	stopStart := time.Now()
	if _, err := b.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("capacitybench")}); err != nil {
		return lat, 0, fmt.Errorf("StopTask: %w", err)
	}
	stopped, serr := pollUntil(ctx, b.c.poll, 60*time.Second, "task STOPPED", func() (bool, error) {
		d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}})
		return err == nil && len(d.Tasks) == 1 && aws.ToString(d.Tasks[0].LastStatus) == "STOPPED", nil
	})
	if werr != nil {
		return lat, 0, werr
	}
	return lat, ms(stopped.Sub(stopStart)), serr
}

// containerRuntime is the OCI runtime dockerd runs the task's app container
// under ("" if it cannot be told).
func containerRuntime(ctx context.Context, taskARN string) string {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-q",
		"--filter", "label=com.amazonaws.ecs.task-arn="+taskARN,
		"--filter", "label=com.amazonaws.ecs.container-name=main").Output()
	ids := strings.Fields(string(out))
	if err != nil || len(ids) == 0 {
		return ""
	}
	rt, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.HostConfig.Runtime}}", ids[0]).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(rt))
}

func (r *fargateResults) table() string {
	var b strings.Builder
	b.WriteString("| pool runtime | launch type | runs under | samples | p50 | p95 | min | max | stop p50 |\n|---|---|---|---|---|---|---|---|---|\n")
	row := func(lt, under string, v, stop []float64) {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", r.Runtime, lt, under, len(v),
			fmtMS(pct(v, 50)), fmtMS(pct(v, 95)), fmtMS(minOf(v)), fmtMS(maxOf(v)), fmtMS(pct(stop, 50)))
	}
	row("EC2", r.EC2Runtime, r.EC2, r.EC2Stop)
	row("FARGATE", r.FargateRuntime, r.Fargate, r.FargateStop)
	p50, p95 := pct(r.Fargate, 50)/pct(r.EC2, 50), pct(r.Fargate, 95)/pct(r.EC2, 95)
	goal := "reported (no goal)"
	if r.Runtime == "runc" {
		goal = map[bool]string{true: "goal ≤ 1.3 met", false: "goal ≤ 1.3 not met"}[p50 <= 1.3]
	}
	fmt.Fprintf(&b, "\nFARGATE / EC2 (%s): p50 %.2f, p95 %.2f — %s\n", r.Runtime, p50, p95, goal)
	return b.String()
}
