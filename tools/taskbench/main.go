// Command taskbench measures RunTask → RUNNING latency on a running ecsd (server
// plus one agent) beside bare `docker run -d` of the same image and command in
// the same run, alternating, and the agent's resident memory.
//
// Latency of one ecsd task: from just before its RunTask call until a
// DescribeTasks poll (one call for all tasks of a batch, every -poll, default
// 5 ms) first shows lastStatus RUNNING; so it includes the API round trips, the
// server's write of the agent's report, and up to one poll interval. Latency of
// one docker task: the wall time of `docker run -d` (the CLI returns once the
// container is started). Concurrent rounds start -concurrent tasks at once (one
// RunTask call, or one docker run, per task) and report each task's latency.
//
// scripts/bench-tasks.sh starts the server and agent and runs this.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

type config struct {
	endpoint   string
	image      string
	modes      []string
	singles    int
	rounds     int
	concurrent int
	poll       time.Duration
	agentPID   int
	awsvpcNet  string
	out        string
}

func main() {
	var c config
	var modes string
	flag.StringVar(&c.endpoint, "endpoint", "", "ecsd URL (dev auth)")
	flag.StringVar(&c.image, "image", "ecsd/busybox:latest", "image of both the task and the docker baseline")
	flag.StringVar(&modes, "modes", "bridge,awsvpc", "network modes to measure")
	flag.IntVar(&c.singles, "singles", 20, "single-task samples per mode and side")
	flag.IntVar(&c.rounds, "rounds", 2, "concurrent rounds per mode and side")
	flag.IntVar(&c.concurrent, "concurrent", 50, "tasks started at once in a concurrent round")
	flag.DurationVar(&c.poll, "poll", 5*time.Millisecond, "DescribeTasks poll interval")
	flag.IntVar(&c.agentPID, "agent-pid", 0, "PID of the `ecsd agent` process whose VmRSS is reported")
	flag.StringVar(&c.awsvpcNet, "awsvpc-docker-network", "ecsd-awsvpc", "network of the docker baseline in awsvpc mode")
	flag.StringVar(&c.out, "out", "", "write the results as JSON to this file")
	flag.Parse()
	c.modes = strings.Split(modes, ",")
	if c.endpoint == "" {
		fatal("-endpoint is required")
	}
	res, err := bench(context.Background(), c)
	if err != nil {
		fatal(err.Error())
	}
	if c.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.out, b, 0o644); err != nil {
			fatal(err.Error())
		}
	}
	fmt.Print(res.table())
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "taskbench:", msg)
	os.Exit(1)
}

// row is one (mode, load) cell: ecsd and docker latencies in milliseconds.
type row struct {
	Mode   string
	Load   string
	ECSD   []float64
	Docker []float64
}

type results struct {
	Rows         []row
	RSSIdleKiB   int
	RSSLoadedKiB int // peak seen with a concurrent round running
}

type bencher struct {
	c   config
	ecs *ecs.Client
	res *results
	seq int
}

func bench(ctx context.Context, c config) (*results, error) {
	b := &bencher{c: c, ecs: testenv.NewClient(c.endpoint, "test", "test", "us-east-1"), res: &results{}}
	b.res.RSSIdleKiB = rss(c.agentPID)
	for _, mode := range c.modes {
		if err := b.register(ctx, mode); err != nil {
			return nil, err
		}
		// Warm up both sides once (first pull/inspect, pause pool).
		if _, err := b.ecsdBatch(ctx, mode, 1); err != nil {
			return nil, err
		}
		if _, err := b.dockerBatch(ctx, mode, 1); err != nil {
			return nil, err
		}
		single := row{Mode: mode, Load: "1 task"}
		for range c.singles {
			e, err := b.ecsdBatch(ctx, mode, 1)
			if err != nil {
				return nil, err
			}
			d, err := b.dockerBatch(ctx, mode, 1)
			if err != nil {
				return nil, err
			}
			single.ECSD, single.Docker = append(single.ECSD, e...), append(single.Docker, d...)
		}
		conc := row{Mode: mode, Load: fmt.Sprintf("%d concurrent", c.concurrent)}
		for range c.rounds {
			e, err := b.ecsdBatch(ctx, mode, c.concurrent)
			if err != nil {
				return nil, err
			}
			d, err := b.dockerBatch(ctx, mode, c.concurrent)
			if err != nil {
				return nil, err
			}
			conc.ECSD, conc.Docker = append(conc.ECSD, e...), append(conc.Docker, d...)
		}
		b.res.Rows = append(b.res.Rows, single, conc)
	}
	return b.res, nil
}

func family(mode string) string { return "taskbench-" + mode }

func (b *bencher) register(ctx context.Context, mode string) error {
	in := &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family(mode)),
		NetworkMode: types.NetworkMode(mode),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(b.c.image), Memory: aws.Int32(16), Essential: aws.Bool(true),
			Command:         []string{"sleep", "3600"},
			LinuxParameters: &types.LinuxParameters{InitProcessEnabled: aws.Bool(true)},
		}},
	}
	_, err := b.ecs.RegisterTaskDefinition(ctx, in)
	return err
}

// ecsdBatch starts n tasks at once, returns each one's RunTask → RUNNING
// latency in ms, then stops them and waits until they are STOPPED. One poller
// describes every started task in one DescribeTasks call per interval, so the
// polling costs the same for 1 and for 50 tasks.
func (b *bencher) ecsdBatch(ctx context.Context, mode string, n int) ([]float64, error) {
	var mu sync.Mutex
	starts := map[string]time.Time{} // task ARN → just before its RunTask call
	lat := map[string]float64{}
	errs := make([]error, n)
	var wg sync.WaitGroup
	stopRSS := b.watchRSS(n)
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			arn, err := b.runOne(ctx, mode)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[i] = err
				return
			}
			starts[arn] = start
		})
	}
	launched := make(chan struct{})
	go func() { wg.Wait(); close(launched) }()
	var pollErr error
	for deadline := time.Now().Add(180 * time.Second); ; time.Sleep(b.c.poll) {
		mu.Lock()
		var pending []string
		for arn := range starts {
			if _, ok := lat[arn]; !ok {
				pending = append(pending, arn)
			}
		}
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		done := len(lat)+failed == n
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			pollErr = fmt.Errorf("%d tasks not RUNNING within 180s", len(pending))
			break
		}
		for len(pending) > 0 {
			chunk := pending[:min(100, len(pending))]
			pending = pending[len(chunk):]
			out, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: chunk})
			now := time.Now()
			if err != nil {
				continue
			}
			mu.Lock()
			for _, t := range out.Tasks {
				arn := aws.ToString(t.TaskArn)
				switch aws.ToString(t.LastStatus) {
				case "RUNNING":
					lat[arn] = ms(now.Sub(starts[arn]))
				case "STOPPED":
					pollErr = fmt.Errorf("task %s stopped: %s", arn, aws.ToString(t.StoppedReason))
					lat[arn] = -1
				}
			}
			mu.Unlock()
		}
	}
	<-launched
	stopRSS()
	var out []float64
	for arn, l := range lat {
		if l >= 0 {
			out = append(out, l)
		}
		_, _ = b.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("taskbench")})
	}
	for arn := range starts {
		b.waitStatus(ctx, arn, "STOPPED", 60*time.Second)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, pollErr
}

// runOne calls RunTask for one task and returns its ARN.
func (b *bencher) runOne(ctx context.Context, mode string) (string, error) {
	in := &ecs.RunTaskInput{TaskDefinition: aws.String(family(mode))}
	if mode == "awsvpc" {
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0123456789abcdef0"}}}
	}
	out, err := b.ecs.RunTask(ctx, in)
	if err != nil {
		return "", fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return "", fmt.Errorf("RunTask: no task (failures %v)", out.Failures)
	}
	return aws.ToString(out.Tasks[0].TaskArn), nil
}

// waitStatus polls until the task's lastStatus is want (or STOPPED) and
// returns the last status seen.
func (b *bencher) waitStatus(ctx context.Context, arn, want string, timeout time.Duration) string {
	last := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(b.c.poll) {
		out, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}})
		if err != nil || len(out.Tasks) != 1 {
			continue
		}
		last = aws.ToString(out.Tasks[0].LastStatus)
		if last == want || last == "STOPPED" {
			return last
		}
	}
	return last
}

// dockerBatch runs n `docker run -d` at once and removes the containers.
func (b *bencher) dockerBatch(ctx context.Context, mode string, n int) ([]float64, error) {
	lat := make([]float64, n)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		b.seq++
		name := fmt.Sprintf("taskbench-%d-%d", os.Getpid(), b.seq)
		wg.Go(func() {
			args := []string{"run", "-d", "--init", "--name", name, "--label", "taskbench=1", "--memory", "16m"}
			if mode == "awsvpc" {
				args = append(args, "--network", b.c.awsvpcNet)
			}
			args = append(args, b.c.image, "sleep", "3600")
			start := time.Now()
			out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
			lat[i] = ms(time.Since(start))
			if err != nil {
				errs[i] = fmt.Errorf("docker run: %v: %s", err, out)
				return
			}
			ids[i] = strings.TrimSpace(string(out))
		})
	}
	wg.Wait()
	var rm []string
	for _, id := range ids {
		if id != "" {
			rm = append(rm, id)
		}
	}
	if len(rm) > 0 {
		_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, rm...)...).Run()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// watchRSS samples the agent's VmRSS while a batch of n ≥ 10 tasks starts and
// runs; the peak is kept.
func (b *bencher) watchRSS(n int) func() {
	if b.c.agentPID == 0 || n < 10 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if kib := rss(b.c.agentPID); kib > b.res.RSSLoadedKiB {
				b.res.RSSLoadedKiB = kib
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return func() {
		// All n tasks are RUNNING now: one more sample at full load.
		close(done)
		wg.Wait()
		if kib := rss(b.c.agentPID); kib > b.res.RSSLoadedKiB {
			b.res.RSSLoadedKiB = kib
		}
	}
}

// rss is VmRSS in KiB from /proc/<pid>/status (0 when unknown).
func rss(pid int) int {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the p-th percentile (nearest rank).
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (r *results) table() string {
	var b strings.Builder
	b.WriteString("| mode | load | samples | ecsd p50 ms | ecsd p95 ms | docker run -d p50 ms | docker run -d p95 ms | ratio p50 | ratio p95 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.Rows {
		e50, e95, d50, d95 := pct(w.ECSD, 50), pct(w.ECSD, 95), pct(w.Docker, 50), pct(w.Docker, 95)
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |\n", w.Mode, w.Load, len(w.ECSD), e50, e95, d50, d95, e50/d50, e95/d95)
	}
	fmt.Fprintf(&b, "\nagent VmRSS: idle %.1f MiB, peak with a concurrent round running %.1f MiB\n", float64(r.RSSIdleKiB)/1024, float64(r.RSSLoadedKiB)/1024)
	return b.String()
}
