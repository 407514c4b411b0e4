// Command placebench measures task placement end to end: the 100,000
// placements onto 5,000 simulated container instances (mixed sizes, three
// Availability Zones, custom attributes; scheduler/simfleet) with
// spread(attribute:ecs.availability-zone) + binpack(memory) and a memberOf
// constraint, each request placed by the scheduler and committed to embedded
// etcd through the planner (compare-and-swap on every touched instance, then
// wait until the cache shows it), as RunTask and the services controller do.
//
//	placebench -instances 5000 -tasks 100000 -batch 10,100,1000
//	placebench -growth 500,5000,20000 -tasks 10000 -batch 10,1000
//
// Each (instances, batch) cell runs in a fresh child process with its own
// etcd, so peak RSS (VmHWM) is per cell. It is a benchmark tool only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/planner"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store/etcd"
)

type bench struct {
	st    *etcd.Store
	cache *cache.Cache
	pl    *planner.Planner
}

func main() {
	var (
		instances  = flag.Int("instances", 5000, "simulated container instances")
		tasks      = flag.Int("tasks", 100_000, "placements to make")
		batches    = flag.String("batch", "10,100,1000", "copies per request, comma-separated (one cell each)")
		growth     = flag.String("growth", "", "comma-separated fleet sizes to run instead of -instances (e.g. 500,5000,20000)")
		reuse      = flag.String("views", "reuse", "reuse: keep scheduler views across requests while no one else writes; rebuild: rebuild them for every request (as RunTask does); both")
		loadTxn    = flag.Int("load-txn", 100, "instance records per transaction when loading the fleet")
		seed       = flag.Int64("seed", 1, "fleet seed")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the placement phase (single cell only)")
		jsonOut    = flag.Bool("json", false, "print one JSON line per cell")
		child      = flag.Bool("child", false, "internal: run exactly one cell in this process")
	)
	flag.Parse()
	log.SetFlags(0)

	if *child {
		bs := parseInts(*batches)
		r, err := runCell(*instances, *tasks, bs[0], *reuse == "reuse", *loadTxn, *seed, *cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}

	sizes := []int{*instances}
	if *growth != "" {
		sizes = parseInts(*growth)
	}
	modes := []string{*reuse}
	if *reuse == "both" {
		modes = []string{"rebuild", "reuse"}
	}
	if !*jsonOut {
		fmt.Printf("%-9s %-6s %-7s %8s %10s %12s %10s %10s %10s %10s %8s %8s %8s %7s\n",
			"instances", "batch", "views", "placed", "place/s", "place-only/s", "commit50", "commit99", "view s", "place s", "retries", "RSS MiB", "heap MiB", "load s")
	}
	for _, n := range sizes {
		for _, b := range parseInts(*batches) {
			for _, m := range modes {
				args := []string{"-child", "-instances", strconv.Itoa(n), "-tasks", strconv.Itoa(*tasks),
					"-batch", strconv.Itoa(b), "-views", m, "-load-txn", strconv.Itoa(*loadTxn), "-seed", strconv.FormatInt(*seed, 10)}
				if *cpuprofile != "" {
					args = append(args, "-cpuprofile", *cpuprofile)
				}
				cmd := exec.Command(os.Args[0], args...)
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					log.Fatalf("cell instances=%d batch=%d views=%s: %v", n, b, m, err)
				}
				var r result
				if err := json.Unmarshal(out, &r); err != nil {
					log.Fatalf("cell output %q: %v", out, err)
				}
				if *jsonOut {
					os.Stdout.Write(out)
					continue
				}
				fmt.Printf("%-9d %-6d %-7s %8d %10.0f %12.0f %8.2fms %8.2fms %10.2f %10.2f %8d %8.0f %8.0f %7.2f\n",
					r.Instances, r.Batch, m, r.Placed, r.PerSec, r.PlaceOnly, r.CommitP50, r.CommitP99,
					r.ViewSeconds, r.PlaceSecs, r.Retries, r.HWMMiB, r.HeapMiB, r.LoadSeconds)
				if r.Failed > 0 || r.Overcommit > 0 || r.Mismatches != 0 {
					fmt.Printf("    %d copies found no room; %d instances over-committed; %d reused views differ from a rebuild\n", r.Failed, r.Overcommit, r.Mismatches)
				}
			}
		}
	}
}

// runCell loads a fleet into a fresh embedded etcd and runs the placements.
func runCell(instances, tasks, batch int, reuse bool, loadTxn int, seed int64, cpuprofile string) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "placebench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := etcd.Open(ctx, etcd.Config{DataDir: dir, Logger: quiet})
	if err != nil {
		return result{}, err
	}
	defer st.Close()
	c := cache.New(st, resource.Root, resource.Decode, quiet)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-c.Ready()
	b := &bench{st: st, cache: c, pl: planner.New(st, c)}

	t0 := time.Now()
	if err := loadFleet(ctx, b, fleetRecords(instances, seed, time.Now().UTC()), loadTxn); err != nil {
		return result{}, err
	}
	load := time.Since(t0)

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return result{}, err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	r, err := place(ctx, b, tasks, batch, reuse)
	r.Instances = instances
	r.LoadSeconds = load.Seconds()
	r.HWMMiB = peakRSS()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	return r, err
}

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func parseInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			log.Fatalf("bad number %q in %q", f, s)
		}
		out = append(out, n)
	}
	return out
}
