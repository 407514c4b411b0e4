package docker_test

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
	"github.com/ecsd/ecsd/internal/testimage"
)

// TestStartLatency compares create+start+running through the runtime with
// `docker run -d` of the same image. It measures, it does not assert; run it
// with ECSD_BENCH=1 (and -v to see the numbers).
func TestStartLatency(t *testing.T) {
	if os.Getenv("ECSD_BENCH") != "1" {
		t.Skip("set ECSD_BENCH=1")
	}
	r := rt(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	ctx := context.Background()
	const n = 10
	var api, cli []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		id, err := r.Create(ctx, runtime.ContainerSpec{Image: testimage.Busybox, Command: []string{"sleep", "300"}, Labels: testLabels(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		st, err := r.Inspect(ctx, id)
		if err != nil || !st.Running {
			t.Fatalf("not running: %+v %v", st, err)
		}
		api = append(api, time.Since(start))
		_ = r.Remove(ctx, id, true)

		start = time.Now()
		out, err := exec.Command("docker", "run", "-d", "--label", labelRun+"="+runID, testimage.Busybox, "sleep", "300").Output()
		if err != nil {
			t.Fatal(err)
		}
		cli = append(cli, time.Since(start))
		_ = r.Remove(ctx, strings.TrimSpace(string(out)), true)
	}
	report := func(name string, d []time.Duration) {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		var sum time.Duration
		for _, x := range s {
			sum += x
		}
		t.Logf("%-10s n=%d min=%v p50=%v p90=%v max=%v mean=%v", name, len(s), s[0].Round(time.Millisecond),
			s[len(s)/2].Round(time.Millisecond), s[len(s)*9/10].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond),
			(sum / time.Duration(len(s))).Round(time.Millisecond))
	}
	report("runtime", api)
	report("docker -d", cli)
}
