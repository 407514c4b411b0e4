package docker_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ecsd/ecsd/agent/runtime"
)

// TestHealthAndEvents drives one healthy and one unhealthy container and
// checks both the inspected health and the event stream.
func TestHealthAndEvents(t *testing.T) {
	t.Parallel()
	r := rt(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	since := time.Now()
	events, errs := r.Events(ctx, testLabels(t), time.Time{})

	hc := func(test ...string) *runtime.HealthCheck {
		return &runtime.HealthCheck{Test: test, Interval: 200 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2}
	}
	good := run(t, r, runtime.ContainerSpec{Command: []string{"sleep", "300"}, HealthCheck: hc("CMD", "true")})
	bad := run(t, r, runtime.ContainerSpec{Command: []string{"sleep", "300"}, HealthCheck: hc("CMD-SHELL", "echo sick; exit 1")})

	st := waitFor(t, r, good, 20*time.Second, "healthy", func(s runtime.ContainerState) bool { return s.Health == runtime.HealthHealthy })
	if !st.Running {
		t.Errorf("healthy container not running: %+v", st)
	}
	st = waitFor(t, r, bad, 20*time.Second, "unhealthy", func(s runtime.ContainerState) bool { return s.Health == runtime.HealthUnhealthy })
	if st.HealthOutput != "sick" {
		t.Errorf("health output %q", st.HealthOutput)
	}

	// sleep as PID 1 ignores SIGTERM, so Stop(0) ends in SIGKILL: die with 137.
	if err := r.Stop(ctx, good, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, good, true); err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		good: {"create", "start", "health_status:healthy", "die:137", "destroy"},
		bad:  {"create", "start", "health_status:unhealthy"},
	}
	got := map[string][]string{}
	timeout := time.After(20 * time.Second)
	done := func() bool {
		for id, w := range want {
			if !hasSubsequence(got[id], w) {
				return false
			}
		}
		return true
	}
	for !done() {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended: %v", <-errs)
			}
			if ev.Labels["ecsd.test.name"] != testLabels(t)["ecsd.test.name"] || ev.Time.Before(since.Add(-time.Second)) || ev.Name == "" {
				t.Errorf("event %+v", ev)
			}
			key := ev.Action
			switch ev.Action {
			case runtime.EventHealthStatus:
				key += ":" + ev.Health
			case runtime.EventDie:
				key += ":" + strconv.Itoa(ev.ExitCode)
			}
			got[ev.ContainerID] = append(got[ev.ContainerID], key)
		case <-timeout:
			t.Fatalf("events so far: good=%v bad=%v", got[good], got[bad])
		}
	}

	// Cancelling ends the stream with the context's error.
	cancel()
	for range events {
	}
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("stream error after cancel: %v", err)
	}

	// Reconnecting with since replays what was missed.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	replay, _ := r.Events(ctx2, testLabels(t), since)
	for ev := range replay {
		if ev.ContainerID == good && ev.Action == runtime.EventDestroy {
			return
		}
	}
	t.Error("replay with since did not deliver the destroy event")
}

// hasSubsequence reports whether want appears in got in order (gaps allowed:
// health checks may repeat).
func hasSubsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
