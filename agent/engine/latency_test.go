package engine_test

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/engine"
	"github.com/ecsd/ecsd/agent/runtime"
	agentapi "github.com/ecsd/ecsd/api/agent"
	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/internal/testimage"
)

// TestStartLatency compares Apply → RUNNING with a bare create+start of the
// same image through the same runtime (what `docker run -d` does), in bridge
// and awsvpc mode (with the pause pool). It only measures with ECSD_BENCH=1.
func TestStartLatency(t *testing.T) {
	if os.Getenv("ECSD_BENCH") != "1" {
		t.Skip("set ECSD_BENCH=1 to measure start latency")
	}
	const n = 15
	r := rt(t)
	ctx := context.Background()
	labels := map[string]string{"ecsd.test.bench": runID}
	defer func() {
		list, _ := r.List(ctx, labels, true)
		for _, c := range list {
			_ = r.Remove(ctx, c.ID, true)
		}
	}()
	// Interleaved, so the machine's load (other tests, other work) weighs on
	// all three alike.
	hb := start(t, "", func(c *engine.Config) { c.Logger = nil })
	ha := start(t, "", func(c *engine.Config) { c.PausePoolSize = 2; c.Logger = nil })
	time.Sleep(2 * time.Second) // let the pool fill
	var bare, bridge, awsvpc []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		id, err := r.Create(ctx, runtime.ContainerSpec{Image: testimage.Busybox, Command: []string{"sleep", "300"}, Labels: labels, MemoryLimitMiB: 64})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		bare = append(bare, time.Since(t0))
		for _, m := range []struct {
			h    *harness
			mode ecs.NetworkMode
			out  *[]time.Duration
		}{{hb, ecs.NetworkModeBridge, &bridge}, {ha, ecs.NetworkModeAwsvpc, &awsvpc}} {
			a := assignment("bench", m.mode, busybox("app", "sleep", "300"))
			t0 := time.Now()
			m.h.eng.Apply(agentapi.Tasks{Tasks: []agentapi.TaskAssignment{a}})
			m.h.rec.waitStatus(t, a.TaskArn, "RUNNING", 30*time.Second)
			*m.out = append(*m.out, time.Since(t0))
		}
		time.Sleep(500 * time.Millisecond) // the pool refills between tasks, as between real RunTasks
	}
	pb := p50(bare)
	for _, m := range []struct {
		mode string
		d    []time.Duration
	}{{"bridge", bridge}, {"awsvpc", awsvpc}} {
		t.Logf("%s: bare create+start p50 %v, engine Apply→RUNNING p50 %v, ratio %.2f", m.mode, pb, p50(m.d), float64(p50(m.d))/float64(pb))
	}
}

func p50(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
