package taskgc_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/controller/taskgc"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

var scope = resource.Scope{Account: "123456789012", Region: "us-east-1"}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{now: t} }
func discard() *slog.Logger          { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func idemKey(token string) string {
	return scope.Key(resource.KindIdempotency, "RunTask", "default", token)
}
func taskKey(id string) string { return scope.TaskKey("default", id) }
func put(t *testing.T, st store.Store, key string, v any) int64 {
	t.Helper()
	rev, err := st.Txn(context.Background(), store.Put(key, resource.Encode(v)))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func startCache(t *testing.T, st store.Store) *cache.Cache {
	t.Helper()
	c := cache.New(st, resource.Root, resource.Decode, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not ready")
	}
	return c
}

func wait(t *testing.T, c *cache.Cache, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

func task(id, status string, stoppedAt time.Time) *resource.Task {
	t := &resource.Task{Scope: scope, Cluster: "default", ID: id}
	t.LastStatus = status
	t.TaskArn = scope.TaskARN("default", id)
	if !stoppedAt.IsZero() {
		t.StoppedAt = ecs.NewTime(stoppedAt)
	}
	return t
}

func TestTaskGCCollectsAfterRetention(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(t0)

	put(t, st, taskKey("running"), task("running", "RUNNING", time.Time{}))
	put(t, st, taskKey("old"), task("old", "STOPPED", t0.Add(-2*time.Hour)))
	put(t, st, taskKey("recent"), task("recent", "STOPPED", t0.Add(-10*time.Minute)))
	put(t, st, idemKey("fresh"), &resource.Idempotency{Operation: "RunTask", CreatedAt: t0.Add(-time.Hour)})
	rev := put(t, st, idemKey("stale"), &resource.Idempotency{Operation: "RunTask", CreatedAt: t0.Add(-25 * time.Hour)})
	wait(t, c, rev)

	gc, err := taskgc.New(taskgc.Config{Store: st, Cache: c, Now: clk.Now, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := gc.Collect(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("first pass: deleted %d, err %v; want 2", n, err)
	}
	for key, want := range map[string]bool{taskKey("running"): true, taskKey("old"): false, taskKey("recent"): true, idemKey("fresh"): true, idemKey("stale"): false} {
		_, err := st.Get(context.Background(), key)
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", key, got, want)
		}
	}

	// An hour later the recent one has expired too; the running task never does.
	clk.Add(time.Hour)
	wait(t, c, rev+2)
	n, err = gc.Collect(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("second pass: deleted %d, err %v; want 1", n, err)
	}
	if _, err := st.Get(context.Background(), taskKey("running")); err != nil {
		t.Fatalf("running task collected: %v", err)
	}
}

func TestTaskGCLeavesRecordsChangedSinceTheSnapshot(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	rev := put(t, st, taskKey("old"), task("old", "STOPPED", t0.Add(-2*time.Hour)))
	wait(t, c, rev)
	snap := c.Snapshot()
	victims := taskgc.Decide(snap, t0, time.Hour, 24*time.Hour)
	if len(victims) != 1 {
		t.Fatalf("victims = %v", victims)
	}
	// The record changes (say, it is tagged) after the decision: the delete's
	// condition fails and the record stays.
	put(t, st, taskKey("old"), task("old", "STOPPED", t0.Add(-2*time.Hour)))
	if _, err := st.Txn(context.Background(), store.Delete(victims[0].Key, victims[0].Rev)); err == nil {
		t.Fatal("delete at a stale revision succeeded")
	}
}

func TestTaskGCRunStopsWithContext(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	c := startCache(t, st)
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	rev := put(t, st, taskKey("old"), task("old", "STOPPED", t0.Add(-2*time.Hour)))
	wait(t, c, rev)
	gc, _ := taskgc.New(taskgc.Config{Store: st, Cache: c, Now: newClock(t0).Now, Interval: 10 * time.Millisecond, Logger: discard()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := st.Get(context.Background(), taskKey("old")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never collected the stopped task")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
