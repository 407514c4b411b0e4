package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type results struct {
	Started  time.Time `json:"started"`
	Client   string    `json:"client"`
	Duration string    `json:"duration_per_cell"`
	Requests int       `json:"requests_per_cell,omitempty"`
	Rate     float64   `json:"offered_rate,omitempty"`
	Targets  []string  `json:"targets"`
	Baseline string    `json:"baseline"`
	Cells    []cell    `json:"cells"`
	// MaxOtherCPU is the largest per-cell share of the machine used by other
	// processes (-1 if unknown).
	MaxOtherCPU float64 `json:"max_other_cpu_share"`
}

func (r *results) find(op string, clients int, target string) *cell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Op == op && c.Clients == clients && c.Target == target {
			return c
		}
	}
	return nil
}

// markdown renders one row per op × clients with every target side by side and
// each target's throughput relative to the baseline.
func markdown(r *results) string {
	var b strings.Builder
	head := []string{"Operation", "Clients"}
	for _, t := range r.Targets {
		head = append(head, t+" req/s", t+" p50", t+" p99")
	}
	for _, t := range r.Targets {
		if t != r.Baseline {
			head = append(head, t+" / "+r.Baseline)
		}
	}
	head = append(head, "Errors")
	row(&b, head)
	row(&b, strings.Split(strings.Repeat("---,", len(head)-1)+"---", ","))

	var ops []string
	var clients []int
	for _, c := range r.Cells {
		if !contains(ops, c.Op) {
			ops = append(ops, c.Op)
		}
		if !contains(clients, c.Clients) {
			clients = append(clients, c.Clients)
		}
	}
	for _, op := range ops {
		for _, n := range clients {
			cols := []string{op, fmt.Sprint(n)}
			var errs []string
			for _, t := range r.Targets {
				c := r.find(op, n, t)
				if c == nil {
					cols = append(cols, "", "", "")
					continue
				}
				cols = append(cols, fmt.Sprintf("%.0f", c.Throughput), fmtDur(c.P50), fmtDur(c.P99))
				if c.Errors > 0 {
					errs = append(errs, fmt.Sprintf("%s: %d (%s)", t, c.Errors, kinds(c.ErrorKinds)))
				}
			}
			base := r.find(op, n, r.Baseline)
			for _, t := range r.Targets {
				if t == r.Baseline {
					continue
				}
				c := r.find(op, n, t)
				if c == nil || base == nil || base.Throughput == 0 {
					cols = append(cols, "n/a")
				} else {
					cols = append(cols, fmt.Sprintf("%.1f×", c.Throughput/base.Throughput))
				}
			}
			if len(errs) == 0 {
				errs = []string{"0"}
			}
			cols = append(cols, strings.Join(errs, "; "))
			row(&b, cols)
		}
	}

	// CPU per request explains where the time goes on a shared machine.
	b.WriteString("\nCPU time per successful request (server process; benchmark client), and the share of\n" +
		"the machine used by other processes during the cell:\n\n")
	head = []string{"Operation", "Clients"}
	for _, t := range r.Targets {
		head = append(head, t+" server", t+" client", t+" other load")
	}
	for _, t := range r.Targets {
		if t != r.Baseline {
			head = append(head, r.Baseline+" / "+t+" server CPU")
		}
	}
	row(&b, head)
	row(&b, strings.Split(strings.Repeat("---,", len(head)-1)+"---", ","))
	for _, op := range ops {
		for _, n := range clients {
			cols := []string{op, fmt.Sprint(n)}
			for _, t := range r.Targets {
				c := r.find(op, n, t)
				if c == nil {
					cols = append(cols, "", "", "")
					continue
				}
				srv := "n/a"
				if c.ServerCPUPerReq > 0 {
					srv = fmtDur(c.ServerCPUPerReq)
				}
				other := "n/a"
				if c.OtherCPU >= 0 {
					other = fmt.Sprintf("%.0f%%", 100*c.OtherCPU)
				}
				cols = append(cols, srv, fmtDur(c.ClientCPUPerReq), other)
			}
			base := r.find(op, n, r.Baseline)
			for _, t := range r.Targets {
				if t == r.Baseline {
					continue
				}
				c := r.find(op, n, t)
				if c == nil || base == nil || c.ServerCPUPerReq <= 0 || base.ServerCPUPerReq <= 0 {
					cols = append(cols, "n/a")
				} else {
					cols = append(cols, fmt.Sprintf("%.1f×", float64(base.ServerCPUPerReq)/float64(c.ServerCPUPerReq)))
				}
			}
			row(&b, cols)
		}
	}
	return b.String()
}

func row(b *strings.Builder, cols []string) {
	b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
}

func kinds(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var out []string
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// fmtDur prints a latency in milliseconds with useful precision.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func writeJSON(path string, r *results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
