// Package storetest is the conformance suite every store.Store must pass: the
// in-memory store (store/memstore) and etcd (store/etcd) run the same table, so
// unit tests on memstore mean something for the binary on etcd.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/store"
)

// Compacter is implemented by stores whose watch history can be discarded on
// demand; the compaction cases run only for them.
type Compacter interface {
	// Compact discards history before rev: a watch after a revision < rev-1 fails.
	Compact(ctx context.Context, rev int64) error
}

// watchTimeout bounds every wait for a watch event.
const watchTimeout = 10 * time.Second

// Run runs the suite. open returns a fresh, empty store; Run opens one for most
// cases (each case works under its own key prefix) and a second to test Close.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	st := open(t)
	t.Cleanup(func() { st.Close() })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, st, "/storetest/"+c.name+"/")
		})
	}
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

var cases = []struct {
	name string
	fn   func(t *testing.T, st store.Store, p string)
}{
	{"CreateAbsent", testCreateAbsent},
	{"CreateExisting", testCreateExisting},
	{"UpdateStale", testUpdateStale},
	{"UpdateAbsent", testUpdateAbsent},
	{"PutUnconditional", testPutUnconditional},
	{"TxnAtomic", testTxnAtomic},
	{"TxnOneRevision", testTxnOneRevision},
	{"TxnDuplicateKey", testTxnDuplicateKey},
	{"Check", testCheck},
	{"Delete", testDelete},
	{"GetNotFound", testGetNotFound},
	{"ListPrefix", testListPrefix},
	{"RevisionMonotonic", testRevisionMonotonic},
	{"WatchReplayThenStream", testWatchReplay},
	{"WatchPrefix", testWatchPrefix},
	{"WatchMultiOpTxn", testWatchMultiOp},
	{"WatchCancel", testWatchCancel},
	{"DeletePrefix", testDeletePrefix},
	{"ConcurrentCAS", testConcurrentCAS},
	{"Compaction", testCompaction}, // last: it discards history
}

func testCreateAbsent(t *testing.T, st store.Store, p string) {
	rev := mustTxn(t, st, store.Create(p+"k", []byte("v1")))
	if rev <= 0 {
		t.Fatalf("create returned revision %d", rev)
	}
	kv := mustGet(t, st, p+"k")
	if string(kv.Value) != "v1" || kv.Revision != rev || kv.Key != p+"k" {
		t.Fatalf("get after create = %+v, want value v1 at %d", kv, rev)
	}
	// Values are copied: changing the caller's slice changes nothing stored.
	val := []byte("v2")
	rev2 := mustTxn(t, st, store.Update(p+"k", val, rev))
	val[0] = 'X'
	if kv := mustGet(t, st, p+"k"); string(kv.Value) != "v2" || kv.Revision != rev2 {
		t.Fatalf("get = %+v, want v2 at %d", kv, rev2)
	}
}

func testCreateExisting(t *testing.T, st store.Store, p string) {
	rev := mustTxn(t, st, store.Create(p+"k", []byte("first")))
	_, err := st.Txn(t.Context(), store.Create(p+"k", []byte("second")))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: err = %v, want ErrConflict", err)
	}
	if kv := mustGet(t, st, p+"k"); string(kv.Value) != "first" || kv.Revision != rev {
		t.Fatalf("after failed create: %+v", kv)
	}
}

func testUpdateStale(t *testing.T, st store.Store, p string) {
	r1 := mustTxn(t, st, store.Create(p+"k", []byte("a")))
	r2 := mustTxn(t, st, store.Update(p+"k", []byte("b"), r1))
	before := currentRev(t, st)
	_, err := st.Txn(t.Context(), store.Update(p+"k", []byte("stale"), r1))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	if kv := mustGet(t, st, p+"k"); string(kv.Value) != "b" || kv.Revision != r2 {
		t.Fatalf("stale update wrote: %+v", kv)
	}
	if after := currentRev(t, st); after != before {
		t.Fatalf("failed txn moved the revision %d -> %d", before, after)
	}
}

func testUpdateAbsent(t *testing.T, st store.Store, p string) {
	_, err := st.Txn(t.Context(), store.Update(p+"k", []byte("x"), 1))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of absent key: err = %v, want ErrConflict", err)
	}
	mustNotFound(t, st, p+"k")
}

func testPutUnconditional(t *testing.T, st store.Store, p string) {
	r1 := mustTxn(t, st, store.Put(p+"k", []byte("a")))
	r2 := mustTxn(t, st, store.Put(p+"k", []byte("b")))
	if r2 <= r1 {
		t.Fatalf("revisions %d then %d", r1, r2)
	}
	if kv := mustGet(t, st, p+"k"); string(kv.Value) != "b" || kv.Revision != r2 {
		t.Fatalf("get = %+v", kv)
	}
}

func testTxnAtomic(t *testing.T, st store.Store, p string) {
	rb := mustTxn(t, st, store.Create(p+"b", []byte("b")))
	rd := mustTxn(t, st, store.Create(p+"d", []byte("d")))
	before := currentRev(t, st)
	_, err := st.Txn(t.Context(),
		store.Create(p+"a", []byte("a")),
		store.Update(p+"b", []byte("b2"), rb),
		store.Put(p+"c", []byte("c")),
		store.Delete(p+"d", rd),
		store.Create(p+"b", []byte("again")), // fails: b exists
	)
	if err == nil {
		// Some stores refuse the duplicate write of b outright; either way nothing may be written.
		t.Fatal("txn with a failing condition succeeded")
	}
	_, err = st.Txn(t.Context(),
		store.Create(p+"a", []byte("a")),
		store.Update(p+"b", []byte("b2"), rb),
		store.Put(p+"c", []byte("c")),
		store.Delete(p+"d", rd),
		store.Check(p+"e", 7), // fails: e is absent
	)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("txn with failing check: err = %v, want ErrConflict", err)
	}
	mustNotFound(t, st, p+"a")
	mustNotFound(t, st, p+"c")
	if kv := mustGet(t, st, p+"b"); string(kv.Value) != "b" || kv.Revision != rb {
		t.Fatalf("b changed: %+v", kv)
	}
	if kv := mustGet(t, st, p+"d"); kv.Revision != rd {
		t.Fatalf("d changed: %+v", kv)
	}
	if after := currentRev(t, st); after != before {
		t.Fatalf("failed txn moved the revision %d -> %d", before, after)
	}
}

func testTxnOneRevision(t *testing.T, st store.Store, p string) {
	mustTxn(t, st, store.Create(p+"gone", []byte("x")))
	before := currentRev(t, st)
	rev := mustTxn(t, st,
		store.Create(p+"a", []byte("a")),
		store.Create(p+"b", []byte("b")),
		store.Put(p+"c", []byte("c")),
		store.Delete(p+"gone", store.Any),
	)
	if rev != before+1 {
		t.Fatalf("txn revision %d, want one past %d", rev, before)
	}
	for _, k := range []string{"a", "b", "c"} {
		if kv := mustGet(t, st, p+k); kv.Revision != rev {
			t.Fatalf("%s at revision %d, want %d", k, kv.Revision, rev)
		}
	}
	mustNotFound(t, st, p+"gone")
}

func testTxnDuplicateKey(t *testing.T, st store.Store, p string) {
	before := currentRev(t, st)
	_, err := st.Txn(t.Context(), store.Put(p+"k", []byte("1")), store.Put(p+"k", []byte("2")))
	if err == nil {
		t.Fatal("txn writing one key twice succeeded")
	}
	mustNotFound(t, st, p+"k")
	if after := currentRev(t, st); after != before {
		t.Fatalf("refused txn moved the revision %d -> %d", before, after)
	}
	// A check and a write of the same key is the normal CAS shape and is fine.
	rev := mustTxn(t, st, store.Check(p+"k", 0), store.Put(p+"k", []byte("1")))
	if kv := mustGet(t, st, p+"k"); kv.Revision != rev {
		t.Fatalf("get = %+v, want revision %d", kv, rev)
	}
}

func testCheck(t *testing.T, st store.Store, p string) {
	ctx := t.Context()
	rg := mustTxn(t, st, store.Create(p+"guard", []byte("g")))
	// A passing check lets the other ops through.
	rev := mustTxn(t, st, store.Check(p+"guard", rg), store.Put(p+"x", []byte("1")))
	if kv := mustGet(t, st, p+"x"); kv.Revision != rev {
		t.Fatalf("x = %+v, want revision %d", kv, rev)
	}
	// The guard itself is untouched by a check.
	if kv := mustGet(t, st, p+"guard"); kv.Revision != rg || string(kv.Value) != "g" {
		t.Fatalf("check wrote the guard: %+v", kv)
	}
	// Check(absent, 0) holds; Check(existing, 0) does not.
	mustTxn(t, st, store.Check(p+"nothing", 0), store.Put(p+"y", []byte("1")))
	if _, err := st.Txn(ctx, store.Check(p+"guard", 0), store.Put(p+"z", []byte("1"))); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Check(existing, 0): err = %v, want ErrConflict", err)
	}
	mustNotFound(t, st, p+"z")
	// A stale check fails once the guard moves on.
	mustTxn(t, st, store.Update(p+"guard", []byte("g2"), rg))
	if _, err := st.Txn(ctx, store.Check(p+"guard", rg), store.Put(p+"z", []byte("1"))); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale check: err = %v, want ErrConflict", err)
	}
	mustNotFound(t, st, p+"z")
	// A transaction of checks only writes nothing and does not move the revision.
	before := currentRev(t, st)
	got, err := st.Txn(ctx, store.Check(p+"nothing", 0))
	if err != nil {
		t.Fatalf("check-only txn: %v", err)
	}
	if got != before || currentRev(t, st) != before {
		t.Fatalf("check-only txn returned %d (store at %d), want %d", got, currentRev(t, st), before)
	}
}

func testDelete(t *testing.T, st store.Store, p string) {
	ctx := t.Context()
	r1 := mustTxn(t, st, store.Create(p+"k", []byte("a")))
	r2 := mustTxn(t, st, store.Update(p+"k", []byte("b"), r1))
	if _, err := st.Txn(ctx, store.Delete(p+"k", r1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with stale revision: err = %v, want ErrConflict", err)
	}
	if kv := mustGet(t, st, p+"k"); kv.Revision != r2 {
		t.Fatalf("stale delete changed the key: %+v", kv)
	}
	rd := mustTxn(t, st, store.Delete(p+"k", r2))
	if rd <= r2 {
		t.Fatalf("delete revision %d not after %d", rd, r2)
	}
	mustNotFound(t, st, p+"k")
	// A deleted key can be created again.
	mustTxn(t, st, store.Create(p+"k", []byte("c")))
	mustTxn(t, st, store.Delete(p+"k", store.Any))
	mustNotFound(t, st, p+"k")
	// Deleting what is not there changes nothing, like etcd: no new revision.
	before := currentRev(t, st)
	if _, err := st.Txn(ctx, store.Delete(p+"k", store.Any)); err != nil {
		t.Fatalf("delete of absent key: %v", err)
	}
	if after := currentRev(t, st); after != before {
		t.Fatalf("delete of absent key moved the revision %d -> %d", before, after)
	}
	if _, err := st.Txn(ctx, store.Delete(p+"k", 5)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete of absent key at revision 5: err = %v, want ErrConflict", err)
	}
}

func testGetNotFound(t *testing.T, st store.Store, p string) {
	mustNotFound(t, st, p+"missing")
	mustTxn(t, st, store.Create(p+"missing/child", []byte("x")))
	mustNotFound(t, st, p+"missing") // a prefix of a key is not a key
}

func testListPrefix(t *testing.T, st store.Store, p string) {
	revs := map[string]int64{}
	for _, k := range []string{"a/b/2", "a/bc", "a/b/1", "a/b", "a/b/0/x", "a/a", "b"} {
		revs[k] = mustTxn(t, st, store.Create(p+k, []byte("v:"+k)))
	}
	kvs, rev, err := st.List(t.Context(), p+"a/b/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
		k := kv.Key[len(p):]
		if string(kv.Value) != "v:"+k || kv.Revision != revs[k] {
			t.Errorf("list entry %+v, want value v:%s at %d", kv, k, revs[k])
		}
	}
	want := []string{p + "a/b/0/x", p + "a/b/1", p + "a/b/2"}
	if !slices.Equal(keys, want) {
		t.Fatalf("list %q = %q, want %q", p+"a/b/", keys, want)
	}
	if rev < revs["b"] {
		t.Fatalf("list revision %d before the last write %d", rev, revs["b"])
	}
	kvs, _, err = st.List(t.Context(), p+"a/")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 6 || kvs[0].Key != p+"a/a" || kvs[5].Key != p+"a/bc" {
		t.Fatalf("list %q = %v", p+"a/", kvs)
	}
	kvs, rev2, err := st.List(t.Context(), p+"none/")
	if err != nil || len(kvs) != 0 || rev2 < rev {
		t.Fatalf("list of empty prefix = %v at %d, %v", kvs, rev2, err)
	}
}

func testRevisionMonotonic(t *testing.T, st store.Store, p string) {
	last := currentRev(t, st)
	for i := range 20 {
		rev := mustTxn(t, st, store.Put(p+strconv.Itoa(i%3), []byte(strconv.Itoa(i))))
		if rev <= last {
			t.Fatalf("write %d at revision %d, not after %d", i, rev, last)
		}
		if cur := currentRev(t, st); cur < rev {
			t.Fatalf("list revision %d behind write revision %d", cur, rev)
		}
		last = rev
	}
}

func testWatchReplay(t *testing.T, st store.Store, p string) {
	ctx := t.Context()
	r0 := currentRev(t, st)
	r1 := mustTxn(t, st, store.Create(p+"k", []byte("1")))
	mustTxn(t, st, store.Put("/storetest-outside/"+p, []byte("x"))) // not under the prefix
	r2 := mustTxn(t, st, store.Update(p+"k", []byte("2"), r1))
	r3 := mustTxn(t, st, store.Delete(p+"k", r2))

	w := st.Watch(ctx, p, r0)
	expect(t, w, r1, ev(store.EventPut, p+"k", "1", r1))
	expect(t, w, r2, ev(store.EventPut, p+"k", "2", r2))
	expect(t, w, r3, ev(store.EventDelete, p+"k", "", r3))
	// Then it follows new writes.
	r4 := mustTxn(t, st, store.Create(p+"k", []byte("4")))
	expect(t, w, r4, ev(store.EventPut, p+"k", "4", r4))

	// Starting later skips what came before, exclusively.
	w2 := st.Watch(ctx, p, r2)
	expect(t, w2, r3, ev(store.EventDelete, p+"k", "", r3))
	expect(t, w2, r4, ev(store.EventPut, p+"k", "4", r4))

	// A watch from the current revision sees only the future.
	w3 := st.Watch(ctx, p, r4)
	r5 := mustTxn(t, st, store.Put(p+"k", []byte("5")))
	expect(t, w3, r5, ev(store.EventPut, p+"k", "5", r5))
}

func testWatchPrefix(t *testing.T, st store.Store, p string) {
	ctx := t.Context()
	w := st.Watch(ctx, p+"x/", currentRev(t, st))
	mustTxn(t, st, store.Put(p+"xc", []byte("sibling")))
	mustTxn(t, st, store.Put(p+"x", []byte("parent")))
	r1 := mustTxn(t, st, store.Put(p+"x/1", []byte("a")))
	mustTxn(t, st, store.Put(p+"y/1", []byte("other")))
	r2 := mustTxn(t, st, store.Put(p+"x/2/deep", []byte("b")))
	expect(t, w, r1, ev(store.EventPut, p+"x/1", "a", r1))
	expect(t, w, r2, ev(store.EventPut, p+"x/2/deep", "b", r2))
}

func testWatchMultiOp(t *testing.T, st store.Store, p string) {
	ctx := t.Context()
	rb := mustTxn(t, st, store.Create(p+"b", []byte("b")))
	w := st.Watch(ctx, p, rb)
	rev := mustTxn(t, st,
		store.Put(p+"c", []byte("c")),
		store.Delete(p+"b", rb),
		store.Put("/storetest-outside/"+p, []byte("x")),
		store.Create(p+"a", []byte("a")),
	)
	expect(t, w, rev,
		ev(store.EventPut, p+"c", "c", rev),
		ev(store.EventDelete, p+"b", "", rev),
		ev(store.EventPut, p+"a", "a", rev),
	)
}

func testWatchCancel(t *testing.T, st store.Store, p string) {
	ctx, cancel := context.WithCancel(t.Context())
	w := st.Watch(ctx, p, currentRev(t, st))
	cancel()
	mustClose(t, w)
}

func testDeletePrefix(t *testing.T, st store.Store, p string) {
	r, ok := st.(store.Resetter)
	if !ok {
		t.Skip("store is not a Resetter")
	}
	ctx := t.Context()
	for _, k := range []string{"d/1", "d/2", "d/3/x", "dz", "e"} {
		mustTxn(t, st, store.Put(p+k, []byte(k)))
	}
	before := currentRev(t, st)
	w := st.Watch(ctx, p, before)
	rev, err := r.DeletePrefix(ctx, p+"d/")
	if err != nil {
		t.Fatal(err)
	}
	if rev != before+1 {
		t.Fatalf("delete prefix at %d, want one revision past %d", rev, before)
	}
	resp := next(t, w)
	if resp.Revision != rev || len(resp.Events) != 3 {
		t.Fatalf("watch after delete prefix: %+v", resp)
	}
	var keys []string
	for _, e := range resp.Events {
		if e.Type != store.EventDelete || e.KV.Revision != rev {
			t.Fatalf("event %+v, want a delete at %d", e, rev)
		}
		keys = append(keys, e.KV.Key)
	}
	slices.Sort(keys)
	if want := []string{p + "d/1", p + "d/2", p + "d/3/x"}; !slices.Equal(keys, want) {
		t.Fatalf("deleted %q, want %q", keys, want)
	}
	kvs, _, err := st.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 2 || kvs[0].Key != p+"dz" || kvs[1].Key != p+"e" {
		t.Fatalf("left after delete prefix: %v", kvs)
	}
	// Nothing to delete: no new revision.
	rev2, err := r.DeletePrefix(ctx, p+"d/")
	if err != nil || rev2 != rev || currentRev(t, st) != rev {
		t.Fatalf("empty delete prefix: rev %d, err %v; want %d", rev2, err, rev)
	}
}

// testConcurrentCAS increments one counter from 8 goroutines with a
// read-modify-CAS loop: every increment must land exactly once.
func testConcurrentCAS(t *testing.T, st store.Store, p string) {
	const workers, each = 8, 50
	key := p + "counter"
	mustTxn(t, st, store.Create(key, []byte("0")))
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for {
					kv, err := st.Get(ctx, key)
					if err != nil {
						errs <- err
						return
					}
					v, err := strconv.Atoi(string(kv.Value))
					if err != nil {
						errs <- err
						return
					}
					_, err = st.Txn(ctx, store.Update(key, []byte(strconv.Itoa(v+1)), kv.Revision))
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kv := mustGet(t, st, key); string(kv.Value) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s, want %d", kv.Value, workers*each)
	}
}

func testCompaction(t *testing.T, st store.Store, p string) {
	c, ok := st.(Compacter)
	if !ok {
		t.Skip("store cannot compact on demand")
	}
	ctx := t.Context()
	r1 := mustTxn(t, st, store.Put(p+"k", []byte("1")))
	mustTxn(t, st, store.Put(p+"k", []byte("2")))
	r3 := mustTxn(t, st, store.Put(p+"k", []byte("3")))
	r4 := mustTxn(t, st, store.Put(p+"k", []byte("4")))
	if err := c.Compact(ctx, r3); err != nil {
		t.Fatal(err)
	}
	// History before r3 is gone: a watch that needs it is told to re-list.
	w := st.Watch(ctx, p, r1)
	resp := next(t, w)
	if !errors.Is(resp.Err, store.ErrCompacted) {
		t.Fatalf("watch from compacted revision: %+v, want ErrCompacted", resp)
	}
	mustClose(t, w)
	// Revision r3 itself is kept.
	w = st.Watch(ctx, p, r3-1)
	expect(t, w, r3, ev(store.EventPut, p+"k", "3", r3))
	expect(t, w, r4, ev(store.EventPut, p+"k", "4", r4))
	// The current state is unaffected.
	if kv := mustGet(t, st, p+"k"); string(kv.Value) != "4" || kv.Revision != r4 {
		t.Fatalf("after compaction: %+v", kv)
	}
}

func testClose(t *testing.T, st store.Store) {
	ctx := t.Context()
	rev := mustTxn(t, st, store.Put("/storetest/close/k", []byte("v")))
	w := st.Watch(ctx, "/storetest/close/", rev)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// The watch ends (an implementation may say why first).
	mustClose(t, w)
	if _, err := st.Get(ctx, "/storetest/close/k"); err == nil {
		t.Fatal("get after close succeeded")
	}
}

// helpers

func mustTxn(t *testing.T, st store.Store, ops ...store.Op) int64 {
	t.Helper()
	rev, err := st.Txn(t.Context(), ops...)
	if err != nil {
		t.Fatalf("txn %v: %v", ops, err)
	}
	return rev
}

func mustGet(t *testing.T, st store.Store, key string) store.KV {
	t.Helper()
	kv, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return kv
}

func mustNotFound(t *testing.T, st store.Store, key string) {
	t.Helper()
	kv, err := st.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get %s = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

// currentRev is the store revision, read through List.
func currentRev(t *testing.T, st store.Store) int64 {
	t.Helper()
	_, rev, err := st.List(t.Context(), "/storetest-rev-probe/")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func ev(typ store.EventType, key, value string, rev int64) store.Event {
	e := store.Event{Type: typ, KV: store.KV{Key: key, Revision: rev}}
	if value != "" {
		e.KV.Value = []byte(value)
	}
	return e
}

// next returns the next response that carries events or an error (stores may
// send empty progress responses in between).
func next(t *testing.T, w <-chan store.WatchResponse) store.WatchResponse {
	t.Helper()
	timer := time.NewTimer(watchTimeout)
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-w:
			if !ok {
				t.Fatal("watch closed unexpectedly")
			}
			if resp.Err != nil || len(resp.Events) > 0 {
				return resp
			}
		case <-timer.C:
			t.Fatal("no watch response")
		}
	}
}

// expect reads the next response and checks it is exactly revision rev with events want.
func expect(t *testing.T, w <-chan store.WatchResponse, rev int64, want ...store.Event) {
	t.Helper()
	resp := next(t, w)
	if resp.Err != nil {
		t.Fatalf("watch error %v, want revision %d", resp.Err, rev)
	}
	if resp.Revision != rev || !sameEvents(resp.Events, want) {
		t.Fatalf("watch response %s, want revision %d %s", fmtResp(resp.Revision, resp.Events), rev, fmtResp(rev, want))
	}
}

func sameEvents(a, b []store.Event) bool {
	return slices.EqualFunc(a, b, func(x, y store.Event) bool {
		return x.Type == y.Type && x.KV.Key == y.KV.Key && string(x.KV.Value) == string(y.KV.Value) &&
			x.KV.Revision == y.KV.Revision
	})
}

func fmtResp(rev int64, evs []store.Event) string {
	s := fmt.Sprintf("@%d[", rev)
	for i, e := range evs {
		if i > 0 {
			s += " "
		}
		typ := "put"
		if e.Type == store.EventDelete {
			typ = "del"
		}
		s += fmt.Sprintf("%s %s=%q@%d", typ, e.KV.Key, e.KV.Value, e.KV.Revision)
	}
	return s + "]"
}

// mustClose drains w until it closes; error responses are allowed, events are not expected.
func mustClose(t *testing.T, w <-chan store.WatchResponse) {
	t.Helper()
	timer := time.NewTimer(watchTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-w:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatal("watch channel not closed")
		}
	}
}
