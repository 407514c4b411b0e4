package runtime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueDedup(t *testing.T) {
	q := NewQueue(QueueConfig{})
	for i := 0; i < 3; i++ {
		q.Add("a")
	}
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	if k, _ := q.Get(); k != "a" {
		t.Fatalf("first key %q: the queue is FIFO", k)
	}
}

func TestQueueNeverTwiceAtOnce(t *testing.T) {
	q := NewQueue(QueueConfig{})
	q.Add("a")
	k, _ := q.Get()
	q.Add("a") // while in process: marked, not queued
	if q.Len() != 0 {
		t.Fatal("a key in process was queued again")
	}
	q.Done(k)
	if q.Len() != 1 {
		t.Fatal("a key added during processing was lost")
	}
}

func TestQueueWorkersNeverShareAKey(t *testing.T) {
	q := NewQueue(QueueConfig{})
	var mu sync.Mutex
	busy := map[string]bool{}
	var processed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				mu.Lock()
				if busy[k] {
					mu.Unlock()
					t.Errorf("key %s processed twice at once", k)
					return
				}
				busy[k] = true
				mu.Unlock()
				time.Sleep(time.Microsecond)
				mu.Lock()
				busy[k] = false
				mu.Unlock()
				processed.Add(1)
				q.Done(k)
			}
		}()
	}
	for i := 0; i < 5000; i++ {
		q.Add(fmt.Sprintf("k%d", i%7))
	}
	for q.Busy() {
		time.Sleep(time.Millisecond)
	}
	q.ShutDown()
	wg.Wait()
	if processed.Load() == 0 {
		t.Fatal("nothing processed")
	}
}

func TestQueueBackoffAndDelays(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	q := NewQueue(QueueConfig{Clock: clk, BaseDelay: time.Second, MaxDelay: 4 * time.Second})
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, d := range want {
		q.AddRateLimited("a")
		clk.Advance(d - time.Millisecond)
		if q.Len() != 0 {
			t.Fatalf("failure %d: queued before %v", i+1, d)
		}
		clk.Advance(time.Millisecond)
		if q.Len() != 1 {
			t.Fatalf("failure %d: not queued after %v", i+1, d)
		}
		k, _ := q.Get()
		q.Done(k)
	}
	q.Forget("a")
	if q.Failures("a") != 0 {
		t.Fatal("Forget kept the failures")
	}
	// The earliest of two delays wins.
	q.AddAfter("b", 10*time.Second)
	q.AddAfter("b", time.Second)
	clk.Advance(time.Second)
	if q.Len() != 1 {
		t.Fatal("the earlier delay did not win")
	}
	k, _ := q.Get()
	q.Done(k)
	clk.Advance(10 * time.Second)
	if q.Len() != 0 {
		t.Fatal("the superseded delay fired too")
	}
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown")
	}
}

// grantElector leads when told to, and loses leadership when told to.
type grantElector struct {
	grant chan struct{}
	mu    sync.Mutex
	lose  context.CancelFunc
}

func (e *grantElector) Campaign(ctx context.Context) (context.Context, error) {
	select {
	case <-e.grant:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	lctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.lose = cancel
	e.mu.Unlock()
	return lctx, nil
}

func (e *grantElector) revoke() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lose()
}

type countingController struct {
	running atomic.Int32
	terms   atomic.Int32
}

func (c *countingController) Name() string { return "counting" }
func (c *countingController) Run(ctx context.Context) error {
	c.terms.Add(1)
	c.running.Add(1)
	<-ctx.Done()
	c.running.Add(-1)
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500 && !cond(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if !cond() {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestManagerRunsOnlyWhileLeading(t *testing.T) {
	el := &grantElector{grant: make(chan struct{})}
	c := &countingController{}
	m := NewManager(el, nil, c)
	m.retry = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	time.Sleep(20 * time.Millisecond)
	if c.running.Load() != 0 || m.Leading() {
		t.Fatal("controllers ran before leading")
	}
	el.grant <- struct{}{}
	waitFor(t, "the first term", func() bool { return c.running.Load() == 1 && m.Leading() })
	el.revoke()
	waitFor(t, "the term to end", func() bool { return c.running.Load() == 0 && !m.Leading() })
	el.grant <- struct{}{}
	waitFor(t, "the second term", func() bool { return c.running.Load() == 1 && c.terms.Load() == 2 })
	cancel()
	<-done
	if c.running.Load() != 0 {
		t.Fatal("controller still running after shutdown")
	}
}

func TestAlwaysLeader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, err := AlwaysLeader{}.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-l.Done()
	if _, err := (AlwaysLeader{}).Campaign(ctx); err == nil {
		t.Fatal("campaign on an ended context")
	}
}
