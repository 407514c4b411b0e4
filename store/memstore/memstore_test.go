package memstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
	"github.com/ecsd/ecsd/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}

// The history bound compacts on its own: a watch from before the window is
// told to re-list, one inside it replays.
func TestHistoryBound(t *testing.T) {
	st := memstore.New(memstore.WithHistory(3))
	defer st.Close()
	ctx := t.Context()
	var revs []int64
	for range 5 {
		rev, err := st.Txn(ctx, store.Put("/k", []byte("v")))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	// Revisions 3, 4, 5 are kept.
	resp := <-st.Watch(ctx, "/", revs[0])
	if !errors.Is(resp.Err, store.ErrCompacted) {
		t.Fatalf("watch after %d: %+v, want ErrCompacted", revs[0], resp)
	}
	resp = <-st.Watch(ctx, "/", revs[1])
	if resp.Err != nil || resp.Revision != revs[2] {
		t.Fatalf("watch after %d: %+v, want revision %d", revs[1], resp, revs[2])
	}
}

// A watcher that falls behind while the history it needs is compacted gets
// ErrCompacted instead of a gap.
func TestSlowWatcherCompacted(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	ctx := t.Context()
	w := st.Watch(ctx, "/", 0)
	var last int64
	for range 4 {
		rev, err := st.Txn(ctx, store.Put("/k", []byte("v")))
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	if err := st.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	var sawErr bool
	timeout := time.After(5 * time.Second)
	for !sawErr {
		select {
		case resp, ok := <-w:
			if !ok {
				t.Fatal("closed without ErrCompacted")
			}
			if resp.Err != nil {
				if !errors.Is(resp.Err, store.ErrCompacted) {
					t.Fatalf("err = %v", resp.Err)
				}
				sawErr = true
			} else if resp.Revision > 2 {
				t.Fatalf("watcher skipped to revision %d", resp.Revision)
			}
		case <-timeout:
			t.Fatal("no ErrCompacted")
		}
	}
	if _, ok := <-w; ok {
		t.Fatal("watch not closed after ErrCompacted")
	}
}

func TestCompactErrors(t *testing.T) {
	st := memstore.New()
	defer st.Close()
	ctx := t.Context()
	if err := st.Compact(ctx, 1); err == nil {
		t.Fatal("compact beyond the current revision succeeded")
	}
	st.Txn(ctx, store.Put("/a", nil))
	st.Txn(ctx, store.Put("/a", nil))
	if err := st.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(ctx, 1); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("compact before the compact revision: %v", err)
	}
}
