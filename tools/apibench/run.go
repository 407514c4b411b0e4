package main

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cell is the result of one op × clients × target run.
type cell struct {
	Op         string         `json:"op"`
	Clients    int            `json:"clients"`
	Target     string         `json:"target"`
	Requests   int            `json:"requests"`
	Seconds    float64        `json:"seconds"`
	Throughput float64        `json:"throughput"` // successful requests per second
	P50        time.Duration  `json:"p50_ns"`
	P99        time.Duration  `json:"p99_ns"`
	Max        time.Duration  `json:"max_ns"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// ErrorSamples holds the first message of each kind.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// CPU time per successful request: the server's (if its PID is known) and
	// this client's own (the SDK signs and encodes every call on the same machine).
	ServerCPUPerReq time.Duration `json:"server_cpu_per_req_ns,omitempty"`
	ClientCPUPerReq time.Duration `json:"client_cpu_per_req_ns"`
	// OtherCPU is the share of the whole machine (all cores) busy with
	// processes other than this client and the target's server during the
	// cell: the machine is shared, and a cell under foreign load is suspect.
	// -1 when unknown (no server PID, or no /proc).
	OtherCPU float64 `json:"other_cpu_share"`
}

// worker-local record, merged after the run so the hot loop takes no locks.
type sample struct {
	lat      []time.Duration
	errors   map[string]int
	messages map[string]string
}

// runCell runs n workers against t: first --warmup unmeasured, then either
// --duration or --requests measured. Every latency is kept and sorted; no
// histogram approximation.
func runCell(ctx context.Context, t *target, name string, n int, o options) (cell, error) {
	var op func(ctx context.Context, worker int) error
	if o.client == "raw" {
		reqs, err := captureRaw(ctx, t, name, n)
		if err != nil {
			return cell{}, err
		}
		op = func(ctx context.Context, w int) error { return t.rawCall(ctx, reqs[w]) }
	} else {
		sdkOp := opTable[name]
		op = func(ctx context.Context, w int) error { return sdkOp(ctx, t.ecs, slot{Clients: n, Worker: w}) }
	}
	if o.warmup > 0 {
		runWorkers(ctx, op, n, o, time.Now().Add(o.warmup), 0)
	}
	m0, srv0, cli0 := machineCPU(), procCPU(t.PID), selfCPU()
	start := time.Now()
	samples := runWorkers(ctx, op, n, o, start.Add(o.duration), o.requests)
	elapsed := time.Since(start)
	m1, srv1, cli1 := machineCPU(), procCPU(t.PID), selfCPU()

	c := cell{Op: name, Clients: n, Target: t.Name, Seconds: elapsed.Seconds(), OtherCPU: -1}
	if m0 >= 0 && m1 >= 0 && srv0 >= 0 && srv1 >= 0 {
		other := (m1 - m0) - (srv1 - srv0) - (cli1 - cli0)
		c.OtherCPU = max(0, float64(other)/(float64(elapsed)*float64(runtime.NumCPU())))
	}
	var all []time.Duration
	for _, s := range samples {
		all = append(all, s.lat...)
		for k, v := range s.errors {
			if c.ErrorKinds == nil {
				c.ErrorKinds, c.ErrorSamples = map[string]int{}, map[string]string{}
			}
			if _, ok := c.ErrorSamples[k]; !ok {
				c.ErrorSamples[k] = s.messages[k]
			}
			c.ErrorKinds[k] += v
			c.Errors += v
		}
	}
	slices.Sort(all)
	c.Requests = len(all)
	c.Throughput = float64(len(all)) / elapsed.Seconds()
	c.P50, c.P99 = percentile(all, 50), percentile(all, 99)
	if len(all) > 0 {
		c.Max = all[len(all)-1]
		c.ClientCPUPerReq = (cli1 - cli0) / time.Duration(len(all))
		if t.PID != 0 && srv0 >= 0 && srv1 >= 0 {
			c.ServerCPUPerReq = (srv1 - srv0) / time.Duration(len(all))
		}
	}
	return c, nil
}

// runWorkers runs n workers until the deadline, or until total requests have
// been started when total > 0.
func runWorkers(ctx context.Context, op func(context.Context, int) error, n int, o options, deadline time.Time, total int) []sample {
	samples := make([]sample, n)
	var started atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := &samples[w]
			s.lat = make([]time.Duration, 0, 4096)
			// With --rate each worker has a fixed schedule (open loop), offset
			// so workers do not fire together. A request sent late because the
			// previous one was still running is charged from its scheduled time
			// (no coordinated omission); one sent late only because the sleep
			// overshot is charged from when it was sent, as that delay is the
			// client's, not the server's.
			var interval time.Duration
			var behind bool
			next := time.Now()
			if o.rate > 0 {
				interval = time.Duration(float64(n) / o.rate * float64(time.Second))
				next = next.Add(interval * time.Duration(w) / time.Duration(n))
			}
			for {
				if interval > 0 {
					if !next.Before(deadline) {
						return
					}
					time.Sleep(time.Until(next))
				}
				if total > 0 {
					if started.Add(1) > int64(total) {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, o.timeout)
				t0 := time.Now()
				if interval > 0 {
					if behind {
						t0 = next
					}
					next = next.Add(interval)
				}
				err := op(rctx, w)
				end := time.Now()
				d := end.Sub(t0)
				behind = interval > 0 && end.After(next)
				cancel()
				if err != nil {
					if s.errors == nil {
						s.errors, s.messages = map[string]int{}, map[string]string{}
					}
					k := errorKey(err)
					if s.errors[k] == 0 {
						s.messages[k] = err.Error()
					}
					s.errors[k]++
					continue
				}
				s.lat = append(s.lat, d)
			}
		}(w)
	}
	wg.Wait()
	return samples
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads a process's user+system CPU time from /proc/<pid>/stat; -1 if
// unknown. Fields 14 and 15 (utime, stime) are in clock ticks, 100 per second
// on Linux.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// machineCPU is the busy time of all CPUs (user, nice, system, irq, softirq,
// steal) from /proc/stat; -1 if unknown.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return -1
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
