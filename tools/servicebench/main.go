// Command servicebench measures a service going from 0 to N running tasks on a
// running ecsd (server plus one agent on the real dockerd) beside N parallel
// `docker run -d` of the same image and command, in the same run, alternating
// round by round.
//
// One ecsd round: from just before CreateService (desiredCount N) until a
// DescribeServices poll (every -poll, default 20 ms) first shows runningCount N
// ("running"), and until it first shows the services-stable condition: one
// deployment and runningCount == desiredCount ("stable"). Both include the API
// round trips and up to one poll interval. The service is then deleted with
// force and the round waits until all its tasks are STOPPED and the service is
// INACTIVE, so rounds do not overlap.
//
// One docker round: N `docker run -d` started at once; from just before the
// first until the last has returned (each returns once its container is
// started). The containers are then removed by ID.
//
// scripts/bench-service.sh starts the server and agent and runs this.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

type config struct {
	endpoint string
	cluster  string
	image    string
	count    int
	rounds   int
	poll     time.Duration
	timeout  time.Duration
	out      string
}

func main() {
	var c config
	flag.StringVar(&c.endpoint, "endpoint", "", "ecsd URL (dev auth)")
	flag.StringVar(&c.cluster, "cluster", "default", "cluster the agent joined")
	flag.StringVar(&c.image, "image", "ecsd/busybox:latest", "image of both the service's task and the docker baseline")
	flag.IntVar(&c.count, "count", 20, "desiredCount of the service / parallel docker runs")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds per side")
	flag.DurationVar(&c.poll, "poll", 20*time.Millisecond, "DescribeServices poll interval")
	flag.DurationVar(&c.timeout, "timeout", 180*time.Second, "limit per round and per cleanup")
	flag.StringVar(&c.out, "out", "", "write the results as JSON to this file")
	flag.Parse()
	if c.endpoint == "" {
		fatal("-endpoint is required")
	}
	res, err := bench(context.Background(), c)
	if res != nil && c.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(c.out, b, 0o644)
	}
	if res != nil {
		fmt.Print(res.table())
	}
	if err != nil {
		fatal(err.Error())
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "servicebench:", msg)
	os.Exit(1)
}

// round is one ecsd round and the docker round after it, in milliseconds.
type round struct {
	ECSDRunning float64
	ECSDStable  float64
	Docker      float64
}

type results struct {
	Count  int
	Rounds []round
}

type bencher struct {
	c   config
	ecs *ecs.Client
	seq int
}

const family = "servicebench"

func bench(ctx context.Context, c config) (*results, error) {
	b := &bencher{c: c, ecs: testenv.NewClient(c.endpoint, "test", "test", "us-east-1")}
	if err := b.register(ctx); err != nil {
		return nil, err
	}
	// Warm up both sides once (image inspect, pause container, first deployment).
	if _, _, err := b.ecsdRound(ctx, 1); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := b.dockerRound(ctx, 1); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	res := &results{Count: c.count}
	for i := range c.rounds {
		run, stable, err := b.ecsdRound(ctx, c.count)
		if err != nil {
			return res, fmt.Errorf("round %d ecsd: %w", i+1, err)
		}
		d, err := b.dockerRound(ctx, c.count)
		if err != nil {
			return res, fmt.Errorf("round %d docker: %w", i+1, err)
		}
		res.Rounds = append(res.Rounds, round{ECSDRunning: run, ECSDStable: stable, Docker: d})
		fmt.Fprintf(os.Stderr, "servicebench: round %d: ecsd running %.0f ms, stable %.0f ms, docker %.0f ms\n", i+1, run, stable, d)
	}
	return res, nil
}

func (b *bencher) register(ctx context.Context) error {
	if _, err := b.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(b.c.cluster)}); err != nil {
		return fmt.Errorf("CreateCluster: %w", err)
	}
	_, err := b.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(b.c.image), Memory: aws.Int32(16), Essential: aws.Bool(true),
			Command:         []string{"sleep", "3600"},
			StopTimeout:     aws.Int32(2),
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
		}},
	})
	if err != nil {
		return fmt.Errorf("RegisterTaskDefinition: %w", err)
	}
	return nil
}

// ecsdRound creates a service of n tasks, returns the ms until runningCount n
// and until services-stable, then deletes it and waits for its tasks to stop.
func (b *bencher) ecsdRound(ctx context.Context, n int) (running, stable float64, err error) {
	b.seq++
	name := fmt.Sprintf("servicebench-%d-%d", os.Getpid(), b.seq)
	start := time.Now()
	_, err = b.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(b.c.cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(family), DesiredCount: aws.Int32(int32(n)),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("CreateService: %w", err)
	}
	defer func() {
		if cerr := b.deleteService(ctx, name); cerr != nil && err == nil {
			err = cerr
		}
	}()
	running, stable = -1, -1
	for deadline := start.Add(b.c.timeout); running < 0 || stable < 0; time.Sleep(b.c.poll) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("service %s: running %.0f ms, stable %.0f ms (-1: not reached) within %s", name, running, stable, b.c.timeout)
		}
		out, derr := b.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(b.c.cluster), Services: []string{name}})
		now := time.Now()
		if derr != nil || len(out.Services) != 1 {
			continue
		}
		s := out.Services[0]
		if running < 0 && s.RunningCount >= int32(n) {
			running = ms(now.Sub(start))
		}
		if stable < 0 && len(s.Deployments) == 1 && s.RunningCount == s.DesiredCount && s.DesiredCount == int32(n) {
			stable = ms(now.Sub(start))
		}
	}
	return running, stable, nil
}

// deleteService force-deletes the service and waits until every task it
// started is STOPPED and the service is INACTIVE.
func (b *bencher) deleteService(ctx context.Context, name string) error {
	var arns []string
	var token *string
	for {
		out, err := b.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(b.c.cluster), ServiceName: aws.String(name), NextToken: token})
		if err != nil {
			return fmt.Errorf("ListTasks: %w", err)
		}
		arns = append(arns, out.TaskArns...)
		if token = out.NextToken; token == nil {
			break
		}
	}
	if _, err := b.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(b.c.cluster), Service: aws.String(name), Force: aws.Bool(true)}); err != nil {
		return fmt.Errorf("DeleteService: %w", err)
	}
	for deadline := time.Now().Add(b.c.timeout); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: tasks not STOPPED / service not INACTIVE within %s", name, b.c.timeout)
		}
		if b.allStopped(ctx, arns) && b.inactive(ctx, name) {
			return nil
		}
	}
}

func (b *bencher) allStopped(ctx context.Context, arns []string) bool {
	for rest := arns; len(rest) > 0; {
		chunk := rest[:min(100, len(rest))]
		rest = rest[len(chunk):]
		out, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(b.c.cluster), Tasks: chunk})
		if err != nil {
			return false
		}
		for _, t := range out.Tasks {
			if aws.ToString(t.LastStatus) != "STOPPED" {
				return false
			}
		}
	}
	return true
}

func (b *bencher) inactive(ctx context.Context, name string) bool {
	out, err := b.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(b.c.cluster), Services: []string{name}})
	if err != nil {
		return false
	}
	return len(out.Services) == 1 && aws.ToString(out.Services[0].Status) == "INACTIVE" && out.Services[0].RunningCount == 0
}

// dockerRound runs n `docker run -d` at once, returns the ms until the last
// one returned, and removes the containers by ID.
func (b *bencher) dockerRound(ctx context.Context, n int) (float64, error) {
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		b.seq++
		name := fmt.Sprintf("servicebench-%d-%d", os.Getpid(), b.seq)
		wg.Go(func() {
			out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--init", "--name", name, "--label", "servicebench=1",
				"--memory", "16m", b.c.image, "sleep", "3600").CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("docker run: %v: %s", err, out)
				return
			}
			ids[i] = strings.TrimSpace(string(out))
		})
	}
	wg.Wait()
	total := ms(time.Since(start))
	var rm []string
	for _, id := range ids {
		if id != "" {
			rm = append(rm, id)
		}
	}
	if len(rm) > 0 {
		if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, rm...)...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("docker rm: %v: %s", err, out)
		}
	}
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| round | ecsd 0→%d runningCount ms | ecsd 0→%d services-stable ms | %d parallel docker run -d ms | ratio running/docker | ratio stable/docker |\n", r.Count, r.Count, r.Count)
	b.WriteString("|---|---|---|---|---|---|\n")
	var run, stable, dock, rr, rs []float64
	for i, w := range r.Rounds {
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.0f | %.2f | %.2f |\n", i+1, w.ECSDRunning, w.ECSDStable, w.Docker, w.ECSDRunning/w.Docker, w.ECSDStable/w.Docker)
		run, stable, dock = append(run, w.ECSDRunning), append(stable, w.ECSDStable), append(dock, w.Docker)
		rr, rs = append(rr, w.ECSDRunning/w.Docker), append(rs, w.ECSDStable/w.Docker)
	}
	if len(r.Rounds) > 0 {
		// The ratio columns of the median row are the medians of the
		// per-round ratios (each round's pair ran back to back).
		fmt.Fprintf(&b, "| median | %.0f | %.0f | %.0f | %.2f | %.2f |\n", median(run), median(stable), median(dock), median(rr), median(rs))
		fmt.Fprintf(&b, "\nratio of the medians: running/docker %.2f, stable/docker %.2f\n", median(run)/median(dock), median(stable)/median(dock))
	}
	return b.String()
}
