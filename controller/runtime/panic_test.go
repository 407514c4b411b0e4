package runtime

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

type panicky struct{ runs atomic.Int32 }

func (p *panicky) Name() string { return "panicky" }

func (p *panicky) Run(ctx context.Context) error {
	if p.runs.Add(1) == 1 {
		panic("a bug")
	}
	<-ctx.Done()
	return nil
}

// A controller that panics is logged and started again; the manager and the
// server survive.
func TestManagerRestartsAPanickedController(t *testing.T) {
	c := &panicky{}
	m := NewManager(AlwaysLeader{}, slog.New(slog.NewTextHandler(io.Discard, nil)), c)
	m.retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for c.runs.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := c.runs.Load(); n < 2 {
		t.Fatalf("controller ran %d times; want a restart after the panic", n)
	}
}
