// Command capacitybench measures issue 6's two start-up figures against a
// running ecsd, each beside a reference taken in the same run:
//
//   - -bench scaling: RunTask through a capacity provider whose node group
//     (min 0, max 2, managed scaling ENABLED) has no instance, until the task
//     is RUNNING — scale-out, the local provisioner starting an `ecsd agent`,
//     its registration, placement of the waiting task and the container start.
//     Reference: starting an `ecsd agent` process exactly as provisioner/local
//     does, until its container instance is registered and agentConnected.
//     Each iteration uses a fresh cluster (and node group and provider);
//     reference and measured iterations alternate.
//   - -bench fargate: one awsvpc definition compatible with EC2 and FARGATE;
//     RunTask with launchType EC2 and FARGATE alternately, RunTask → RUNNING
//     each, against `ecsd dev`'s local agent and its Fargate pool agent.
//
// Latency = from just before the call that starts things (RunTask, or the
// agent's exec) until a poll (every -poll) first shows the awaited state, so
// it includes up to one poll interval; both sides of a comparison poll alike.
//
// scripts/bench-capacity.sh starts the servers and runs this.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/ecsd/ecsd/internal/testenv"
)

type config struct {
	bench      string
	endpoint   string
	binary     string
	joinToken  string
	workDir    string
	image      string
	iterations int
	samples    int
	warmup     int
	poll       time.Duration
	runtime    string
	out        string
	instances  string
}

func main() {
	var c config
	flag.StringVar(&c.bench, "bench", "", "scaling or fargate")
	flag.StringVar(&c.endpoint, "endpoint", "", "ecsd URL (dev auth)")
	flag.StringVar(&c.binary, "ecsd", "bin/ecsd", "scaling: the ecsd binary the reference agents run (the server's own)")
	flag.StringVar(&c.joinToken, "join-token", "", "scaling: the server's join token")
	flag.StringVar(&c.workDir, "work", "", "scaling: directory for the reference agents' data dirs and logs")
	flag.StringVar(&c.image, "image", "ecsd/busybox:latest", "the tasks' image")
	flag.IntVar(&c.iterations, "iterations", 10, "scaling: measured iterations per side (reference, node group), alternating")
	flag.IntVar(&c.samples, "samples", 20, "fargate: tasks per launch type, alternating")
	flag.IntVar(&c.warmup, "warmup", 1, "unmeasured iterations per side first")
	flag.DurationVar(&c.poll, "poll", 10*time.Millisecond, "poll interval of DescribeTasks / DescribeContainerInstances")
	flag.StringVar(&c.runtime, "runtime", "", "fargate: the pool agent's --fargate-runtime (for the table; checked on a warm-up task)")
	flag.StringVar(&c.out, "out", "", "write the results as JSON to this file")
	flag.StringVar(&c.instances, "instances-file", "", "append every container instance ARN seen, one a line (the caller's cleanup removes their containers)")
	flag.Parse()
	if c.endpoint == "" {
		fatal("-endpoint is required")
	}
	ctx := context.Background()
	client := testenv.NewClient(c.endpoint, "test", "test", "us-east-1")
	var res interface{ table() string }
	var err error
	switch c.bench {
	case "scaling":
		if c.joinToken == "" || c.workDir == "" {
			fatal("-bench scaling needs -join-token and -work")
		}
		res, err = benchScaling(ctx, c, client)
	case "fargate":
		res, err = benchFargate(ctx, c, client)
	default:
		fatal("-bench: want scaling or fargate")
	}
	if res != nil && c.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if werr := os.WriteFile(c.out, b, 0o644); werr != nil {
			fatal(werr.Error())
		}
	}
	if err != nil {
		fatal(err.Error())
	}
	fmt.Print(res.table())
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "capacitybench:", msg)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "capacitybench: "+format+"\n", args...)
}

// noteInstance records an instance ARN for the caller's container cleanup.
func noteInstance(c config, arn string) {
	if c.instances == "" || arn == "" {
		return
	}
	f, err := os.OpenFile(c.instances, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, arn)
}

// removeContainers removes the containers an agent left behind (a stopped
// agent leaves its containers, e.g. its warm pause pool, for a successor).
func removeContainers(ctx context.Context, instanceARN string) {
	if instanceARN == "" {
		return
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label=ecsd.instance="+instanceARN).Output()
	if err != nil {
		return
	}
	ids := strings.Fields(string(out))
	if len(ids) > 0 {
		_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
}

// ---- statistics

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

func minOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// fmtMS formats milliseconds with a thousands separator.
func fmtMS(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	if n >= 1000 {
		s = fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	return s + " ms"
}

// pollUntil calls fn every interval until it reports done, fails, or the
// timeout passes; now is the time of the poll that saw it done.
func pollUntil(ctx context.Context, interval, timeout time.Duration, what string, fn func() (bool, error)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		done, err := fn()
		now := time.Now()
		if err != nil {
			return now, err
		}
		if done {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(interval):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
