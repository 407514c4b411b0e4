package etcd_test

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/etcd"
	"github.com/ecsd/ecsd/store/storetest"
)

// logBuffer collects what the store logs at warn and above.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func open(t *testing.T, dir string, log *slog.Logger) *etcd.Store {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	st, err := etcd.Open(t.Context(), etcd.Config{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st := open(t, t.TempDir(), nil)
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// State is on disk: closing and re-opening the same data dir finds it, at the
// same revisions, and the revision keeps counting from there.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st := open(t, dir, nil)
	r1, err := st.Txn(ctx, store.Create("/a", []byte("1")), store.Create("/b", []byte("2")))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := st.Txn(ctx, store.Delete("/b", r1))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st.Close() // idempotent

	st = open(t, dir, nil)
	defer st.Close()
	kvs, rev, err := st.List(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if rev != r2 || len(kvs) != 1 || kvs[0].Key != "/a" || string(kvs[0].Value) != "1" || kvs[0].Revision != r1 {
		t.Fatalf("after re-open: %v at %d; want /a=1@%d at %d", kvs, rev, r1, r2)
	}
	r3, err := st.Txn(ctx, store.Update("/a", []byte("3"), r1))
	if err != nil || r3 != r2+1 {
		t.Fatalf("update after re-open: rev %d, %v; want %d", r3, err, r2+1)
	}
}

// Compaction through the etcd client (as the auto-compactor does) makes a watch
// from an older revision report store.ErrCompacted and end.
func TestWatchCompacted(t *testing.T) {
	ctx := t.Context()
	st := open(t, t.TempDir(), nil)
	defer st.Close()
	var last int64
	for range 5 {
		rev, err := st.Txn(ctx, store.Put("/k", []byte("v")))
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	if _, err := st.Client().Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	w := st.Watch(ctx, "/", 1)
	resp, ok := <-w
	if !ok || !errors.Is(resp.Err, store.ErrCompacted) {
		t.Fatalf("watch from compacted revision: %+v (open %v), want ErrCompacted", resp, ok)
	}
	if _, ok := <-w; ok {
		t.Fatal("watch still open after ErrCompacted")
	}
	if err := st.Compact(ctx, 2); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("compacting an older revision: %v, want ErrCompacted", err)
	}
}

// A clean start, some work and Close log nothing at warn or above.
func TestCloseQuiet(t *testing.T) {
	var buf logBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := t.Context()
	st := open(t, t.TempDir(), log)
	w := st.Watch(ctx, "/", 0)
	if _, err := st.Txn(ctx, store.Put("/k", []byte("v"))); err != nil {
		t.Fatal(err)
	}
	<-w
	st.Close()
	for range w {
	}
	if s := buf.String(); s != "" {
		t.Fatalf("logged on a clean run:\n%s", s)
	}
}
