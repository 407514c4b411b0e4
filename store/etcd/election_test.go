package etcd_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ecsd/ecsd/store/etcd"
)

// TestElection: one leader at a time; when it gives up, the next campaigner
// leads; Leader names the current one.
func TestElection(t *testing.T) {
	st, err := etcd.Open(t.Context(), etcd.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := st.Elector("test", "a", 5*time.Second)
	b := st.Elector("test", "b", 5*time.Second)

	actx, acancel := context.WithCancel(context.Background())
	alead, err := a.Campaign(actx)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := a.Leader(context.Background()); id != "a" {
		t.Fatalf("leader %q, want a", id)
	}
	got := make(chan context.Context, 1)
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	go func() {
		l, err := b.Campaign(bctx)
		if err == nil {
			got <- l
		}
	}()
	select {
	case <-got:
		t.Fatal("b leads while a does")
	case <-time.After(300 * time.Millisecond):
	}
	acancel() // a steps down
	<-alead.Done()
	var blead context.Context
	select {
	case blead = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not take over")
	}
	if id, _ := b.Leader(context.Background()); id != "b" {
		t.Fatalf("leader %q, want b", id)
	}
	bcancel()
	select {
	case <-blead.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("b's term did not end with its context")
	}
}
