package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

// Benchmarks on the simulated fleet, end to end through the API (run with
// -benchtime=1x; each iteration uses a fresh cluster):
//
//	go test ./controller/service/ -run '^$' -bench . -benchtime=1x

func benchFleet(b *testing.B, env *testenv.Env, cluster string, instances int) *simFleet {
	createCluster(b, env, cluster)
	f := newSimFleet(b, env, cluster)
	for i := 0; i < instances; i++ {
		f.addInstance(fmt.Sprintf("i%03d", i), fmt.Sprintf("us-east-1%c", 'a'+i%3), 4096, 8192)
	}
	return f
}

// waitCompleted polls DescribeServices until the service is stable (one
// COMPLETED deployment, running = desired) and returns how long it took.
func waitCompleted(b *testing.B, env *testenv.Env, cluster, service string, desired int32, start time.Time, timeout time.Duration) time.Duration {
	for {
		out, err := env.ECS.DescribeServices(context.Background(), &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
		if err != nil {
			b.Fatal(err)
		}
		s := out.Services[0]
		if len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted && s.RunningCount == desired && s.PendingCount == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			b.Fatalf("not stable after %v: running %d pending %d deployments %d", timeout, s.RunningCount, s.PendingCount, len(s.Deployments))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkServiceSteady1000 is 0 → 1,000 tasks on 100 simulated instances:
// time from CreateService to the steady state.
func BenchmarkServiceSteady1000(b *testing.B) {
	env := testenv.Start(b)
	for i := 0; i < b.N; i++ {
		cluster := fmt.Sprintf("steady%d", i)
		f := benchFleet(b, env, cluster, 100)
		td := registerTD(b, env, cluster, "busybox", false)
		start := time.Now()
		if _, err := env.ECS.CreateService(context.Background(), &awsecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1000)}); err != nil {
			b.Fatal(err)
		}
		d := waitCompleted(b, env, cluster, "web", 1000, start, 2*time.Minute)
		b.ReportMetric(d.Seconds(), "s-to-steady")
		f.stop()
	}
}

// BenchmarkServiceRolling100 is a rolling deployment of 100 tasks at
// 50%/200% on 20 simulated instances: time from UpdateService to COMPLETED.
func BenchmarkServiceRolling100(b *testing.B) {
	env := testenv.Start(b)
	for i := 0; i < b.N; i++ {
		cluster := fmt.Sprintf("rolling%d", i)
		f := benchFleet(b, env, cluster, 20)
		td1 := registerTD(b, env, cluster, "busybox:1", false)
		td2 := registerTD(b, env, cluster, "busybox:2", false)
		if _, err := env.ECS.CreateService(context.Background(), &awsecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("web"),
			TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(100),
			DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(200)}}); err != nil {
			b.Fatal(err)
		}
		waitCompleted(b, env, cluster, "web", 100, time.Now(), 2*time.Minute)
		start := time.Now()
		if _, err := env.ECS.UpdateService(context.Background(), &awsecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("web"), TaskDefinition: aws.String(td2)}); err != nil {
			b.Fatal(err)
		}
		d := waitCompleted(b, env, cluster, "web", 100, start, 2*time.Minute)
		b.ReportMetric(d.Seconds(), "s-to-completed")
		f.stop()
	}
}
