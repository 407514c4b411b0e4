// Command apibench measures ECS API throughput and latency through the official
// aws-sdk-go-v2 ECS client against one or more endpoints in the same run
// (typically ecsd and moto's server), interleaving targets per cell so that
// machine drift affects all of them alike. Nothing fails on a timing: it
// reports figures, and errors only when a target cannot be set up.
//
//	apibench --endpoint ecsd=http://127.0.0.1:8080 --endpoint moto=http://127.0.0.1:5000 \
//	         --clients 1,16,64 --duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// listFlag collects a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// target is one endpoint under test.
type target struct {
	Name string
	URL  string
	PID  int // server process, for CPU accounting; 0 = unknown
	ecs  *ecs.Client
	http *http.Client
}

// Static credentials: ecsd's dev auth and moto accept any well-formed signature.
const (
	accessKeyID     = "AKIDAPIBENCH"
	secretAccessKey = "apibench-secret"
)

type options struct {
	client     string
	clients    []int
	duration   time.Duration
	warmup     time.Duration
	requests   int
	rate       float64
	ops        []string
	baseline   string
	revisions  int
	jsonOut    string
	cpuProfile string
	timeout    time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("apibench: ")
	var endpoints, pids, ops listFlag
	var clients string
	var o options
	flag.Var(&endpoints, "endpoint", "target as name=URL (repeatable or comma-separated); URL \"inproc\" starts an in-process ecsd (embedded etcd in a temp dir)")
	flag.Var(&pids, "pid", "server process of a target as name=PID (repeatable); adds server CPU per request to the report (Linux /proc)")
	flag.StringVar(&o.client, "client", "sdk", "sdk (the aws-sdk-go-v2 ECS client per call) or raw (replay the SDK's signed request with net/http; see raw.go)")
	flag.StringVar(&clients, "clients", "1,16,64", "comma-separated numbers of concurrent clients")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per cell (op × clients × target)")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured run before each cell")
	flag.IntVar(&o.requests, "requests", 0, "measured requests per cell instead of --duration (0 = use --duration)")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: total requests per second offered per cell, spread over the clients (0 = closed loop, each client sends as fast as answers come)")
	flag.Var(&ops, "ops", "operations to measure, comma-separated, from "+strings.Join(opNames(), ", ")+" (default: the first four)")
	flag.StringVar(&o.baseline, "baseline", "", "target the others are compared to (default: the last --endpoint)")
	flag.IntVar(&o.revisions, "revisions", 5, "revisions of the read family registered during setup")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (useful with an inproc target)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.Parse()

	if len(endpoints) == 0 {
		log.Fatal("give at least one --endpoint name=URL")
	}
	var err error
	if o.clients, err = parseInts(clients); err != nil {
		log.Fatalf("--clients: %v", err)
	}
	o.ops = ops
	if len(o.ops) == 0 {
		o.ops = defaultOps
	}
	for _, name := range o.ops {
		if _, ok := opTable[name]; !ok {
			log.Fatalf("--ops: unknown operation %q (have %s)", name, strings.Join(opNames(), ", "))
		}
	}
	if o.rate > 0 && o.requests > 0 {
		log.Fatal("--rate runs for --duration; do not combine it with --requests")
	}
	if o.client != "sdk" && o.client != "raw" {
		log.Fatalf("--client %q: want sdk or raw", o.client)
	}
	maxClients := 1
	for _, c := range o.clients {
		maxClients = max(maxClients, c)
	}

	targets, cleanup, err := makeTargets(endpoints, pids, maxClients)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	if o.baseline == "" {
		o.baseline = targets[len(targets)-1].Name
	}
	if indexOf(targets, o.baseline) < 0 {
		log.Fatalf("--baseline %q is not a target", o.baseline)
	}

	ctx := context.Background()
	for _, t := range targets {
		if err := setup(ctx, t, o.ops, o.revisions); err != nil {
			cleanup()
			log.Fatalf("setup %s (%s): %v", t.Name, t.URL, err)
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	res := &results{Started: time.Now().UTC(), Client: o.client, Duration: o.duration.String(), Requests: o.requests, Rate: o.rate, Baseline: o.baseline}
	for _, t := range targets {
		res.Targets = append(res.Targets, t.Name)
	}
	// Cells are interleaved: for each op and concurrency, every target in turn.
	for _, opName := range o.ops {
		for _, n := range o.clients {
			for _, t := range targets {
				c, err := runCell(ctx, t, opName, n, o)
				if err != nil {
					cleanup()
					log.Fatalf("%s %s: %v", t.Name, opName, err)
				}
				log.Printf("%-24s clients=%-3d %-6s %9.1f req/s  p50 %-9s p99 %-9s errors %d",
					opName, n, t.Name, c.Throughput, fmtDur(c.P50), fmtDur(c.P99), c.Errors)
				for k, m := range c.ErrorSamples {
					log.Printf("    %s: %s", k, m)
				}
				res.Cells = append(res.Cells, c)
			}
		}
	}
	res.MaxOtherCPU = -1
	for _, c := range res.Cells {
		res.MaxOtherCPU = max(res.MaxOtherCPU, c.OtherCPU)
	}
	if res.MaxOtherCPU >= 0 {
		log.Printf("other processes used at most %.0f%% of the machine during a cell", 100*res.MaxOtherCPU)
	}
	fmt.Print(markdown(res))
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, res); err != nil {
			log.Fatal(err)
		}
	}
}

// makeTargets builds one SDK client per target over a shared transport sized for
// the largest concurrency, so no cell pays for new connections.
func makeTargets(endpoints, pids []string, maxClients int) ([]*target, func(), error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4 * maxClients * len(endpoints)
	tr.MaxIdleConnsPerHost = 2 * maxClients
	tr.MaxConnsPerHost = 0
	httpClient := &http.Client{Transport: tr}

	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		closers = nil
	}
	var targets []*target
	for _, e := range endpoints {
		name, url, ok := strings.Cut(e, "=")
		if !ok {
			name, url = strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://"), e
		}
		if indexOf(targets, name) >= 0 {
			cleanup()
			return nil, nil, fmt.Errorf("--endpoint: target name %q given twice", name)
		}
		t := &target{Name: name, URL: url, http: httpClient}
		if url == "inproc" {
			u, stop, err := startInproc()
			if err != nil {
				cleanup()
				return nil, nil, fmt.Errorf("inproc ecsd: %w", err)
			}
			closers = append(closers, stop)
			t.URL = u
		}
		t.ecs = ecs.New(ecs.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(t.URL),
			Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
			HTTPClient:   httpClient,
			// A retried request would hide a failure and distort latency.
			Retryer: aws.NopRetryer{},
		})
		targets = append(targets, t)
	}
	for _, p := range pids {
		name, v, ok := strings.Cut(p, "=")
		pid, err := strconv.Atoi(v)
		i := indexOf(targets, name)
		if !ok || err != nil || i < 0 {
			cleanup()
			return nil, nil, fmt.Errorf("--pid %q: want name=PID for a named --endpoint", p)
		}
		targets[i].PID = pid
	}
	return targets, cleanup, nil
}

func indexOf(ts []*target, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
