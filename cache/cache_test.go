package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsd/ecsd/store"
	"github.com/ecsd/ecsd/store/memstore"
)

const (
	root    = "/r/"
	timeout = 5 * time.Second
)

// decode keeps values as strings; "bad..." does not decode and "skip" decodes
// to nothing (a key kind the cache ignores).
func decode(_ string, v []byte) (any, error) {
	switch {
	case bytes.HasPrefix(v, []byte("bad")):
		return nil, errors.New("not a record")
	case string(v) == "skip":
		return nil, nil
	}
	return string(v), nil
}

// syncBuffer is a log sink safe for the cache goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newStore(t *testing.T) *memstore.Store {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	return st
}

// start runs a cache of root on st until the test ends and waits for its first list.
func start(t *testing.T, st store.Store, log *slog.Logger, subs ...func(Change)) *Cache {
	t.Helper()
	if log == nil {
		log = testLogger(t)
	}
	c := New(st, root, decode, log)
	for _, fn := range subs {
		c.Subscribe(fn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-c.Ready():
	case <-time.After(timeout):
		t.Fatal("cache not ready")
	}
	return c
}

func txn(t *testing.T, st store.Store, ops ...store.Op) int64 {
	t.Helper()
	rev, err := st.Txn(t.Context(), ops...)
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	return rev
}

func waitFor(t *testing.T, c *Cache, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := c.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// contents is the snapshot under root as key=value@rev strings.
func contents(s *Snapshot) []string {
	var out []string
	s.Walk(root, func(e *Entry) bool {
		out = append(out, fmt.Sprintf("%s=%v@%d", e.Key, e.Obj, e.Rev))
		return true
	})
	return out
}

func wantContents(t *testing.T, s *Snapshot, want ...string) {
	t.Helper()
	if got := contents(s); !slices.Equal(got, want) {
		t.Fatalf("snapshot at %d = %q, want %q", s.Rev(), got, want)
	}
}

// recorder collects the changes a subscriber sees.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) add(ch Change) {
	r.mu.Lock()
	r.changes = append(r.changes, ch)
	r.mu.Unlock()
}

// wait returns the changes once there are n of them: subscribers run just
// after a snapshot is published, so WaitFor alone does not order them.
func (r *recorder) wait(t *testing.T, n int) []Change {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		have := len(r.changes)
		r.mu.Unlock()
		if have >= n {
			return r.take()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes, want %d: %q", have, n, fmtChanges(r.take()))
		}
	}
}

func (r *recorder) take() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	r.changes = nil
	return out
}

// fmtChange is a change as "key old->new @rev [relist]" (revisions of old and new; - for none).
func fmtChange(ch Change) string {
	side := func(e *Entry) string {
		if e == nil {
			return "-"
		}
		return fmt.Sprintf("%v@%d", e.Obj, e.Rev)
	}
	s := fmt.Sprintf("%s %s->%s @%d", ch.Key, side(ch.Old), side(ch.New), ch.Rev)
	if ch.Relist {
		s += " relist"
	}
	return s
}

func fmtChanges(chs []Change) []string {
	out := make([]string, len(chs))
	for i, ch := range chs {
		out[i] = fmtChange(ch)
	}
	return out
}

func TestListThenFollow(t *testing.T) {
	st := newStore(t)
	ra := txn(t, st, store.Put(root+"a", []byte("1")), store.Put("/other/x", []byte("1")))
	rb := txn(t, st, store.Put(root+"b", []byte("2")))
	c := start(t, st, nil)
	s := c.Snapshot()
	if s.Rev() != rb || c.Rev() != rb {
		t.Fatalf("after list at %d: snapshot at %d, cache at %d", rb, s.Rev(), c.Rev())
	}
	wantContents(t, s, fmt.Sprintf("/r/a=1@%d", ra), fmt.Sprintf("/r/b=2@%d", rb))

	rc := txn(t, st, store.Create(root+"c", []byte("3")), store.Update(root+"a", []byte("1b"), ra))
	rd := txn(t, st, store.Delete(root+"b", rb))
	txn(t, st, store.Put("/other/y", []byte("ignored"))) // outside the prefix
	waitFor(t, c, rd)
	s = c.Snapshot()
	wantContents(t, s, fmt.Sprintf("/r/a=1b@%d", rc), fmt.Sprintf("/r/c=3@%d", rc))
	if _, ok := s.Get("/other/x"); ok {
		t.Fatal("cache holds a key outside its prefix")
	}
	if e, ok := s.Get(root + "c"); !ok || e.Obj != "3" || e.Key != root+"c" {
		t.Fatalf("Get(c) = %+v, %v", e, ok)
	}
}

func TestSnapshotImmutable(t *testing.T) {
	st := newStore(t)
	ra := txn(t, st, store.Put(root+"a", []byte("1")))
	rb := txn(t, st, store.Put(root+"b", []byte("2")))
	c := start(t, st, nil)
	old := c.Snapshot()
	before := contents(old)

	rev := txn(t, st, store.Update(root+"a", []byte("changed"), ra), store.Delete(root+"b", rb), store.Put(root+"c", []byte("new")))
	waitFor(t, c, rev)

	if old.Rev() != rb {
		t.Fatalf("old snapshot moved to %d", old.Rev())
	}
	if got := contents(old); !slices.Equal(got, before) {
		t.Fatalf("old snapshot changed: %q, was %q", got, before)
	}
	if _, ok := old.Get(root + "c"); ok {
		t.Fatal("old snapshot sees a later create")
	}
	if e, ok := old.Get(root + "b"); !ok || e.Obj != "2" {
		t.Fatal("old snapshot lost a later-deleted key")
	}
	if n := old.Count(root); n != 2 {
		t.Fatalf("old snapshot count %d", n)
	}
	wantContents(t, c.Snapshot(), fmt.Sprintf("/r/a=changed@%d", rev), fmt.Sprintf("/r/c=new@%d", rev))
}

func TestWaitFor(t *testing.T) {
	st := newStore(t)
	c := start(t, st, nil)
	// Already there: returns at once, even with a done context.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.WaitFor(done, c.Rev()); err != nil {
		t.Fatalf("WaitFor(current): %v", err)
	}

	want := c.Rev() + 1
	returned := make(chan error, 1)
	var sawKey bool
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := c.WaitFor(ctx, want)
		_, sawKey = c.Snapshot().Get(root + "k")
		returned <- err
	}()
	select {
	case err := <-returned:
		t.Fatalf("WaitFor returned before the write: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if rev := txn(t, st, store.Put(root+"k", []byte("v"))); rev != want {
		t.Fatalf("write at %d, want %d", rev, want)
	}
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if !sawKey {
		t.Fatal("WaitFor returned before the write was visible")
	}

	// A revision that never comes: the context decides.
	ctx, cancel2 := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel2()
	err := c.WaitFor(ctx, want+100)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(future) = %v, want DeadlineExceeded", err)
	}
}

// gatedStore lets a test cut the cache's watch: once disconnected, the watches
// open then deliver nothing more; reconnect ends them with ErrCompacted, so the
// cache must re-list to learn what it missed. Later watches work normally.
type gatedStore struct {
	*memstore.Store
	mu      sync.Mutex
	gen     int // generation of new watches; reconnect starts the next
	cut     int // watches of generations <= cut drop everything
	broken  chan struct{}
	watches int
}

func newGated(t *testing.T) *gatedStore {
	return &gatedStore{Store: newStore(t), cut: -1, broken: make(chan struct{})}
}

func (g *gatedStore) watchCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.watches
}

func (g *gatedStore) Watch(ctx context.Context, prefix string, after int64) <-chan store.WatchResponse {
	inner := g.Store.Watch(ctx, prefix, after)
	out := make(chan store.WatchResponse)
	g.mu.Lock()
	g.watches++
	broken, gen := g.broken, g.gen
	g.mu.Unlock()
	go func() {
		defer close(out)
		for {
			select {
			case wr, ok := <-inner:
				if !ok {
					return
				}
				g.mu.Lock()
				drop := gen <= g.cut
				g.mu.Unlock()
				if drop {
					continue
				}
				select {
				case out <- wr:
				case <-ctx.Done():
					return
				}
			case <-broken:
				select {
				case out <- store.WatchResponse{Err: fmt.Errorf("gated: %w", store.ErrCompacted)}:
				case <-ctx.Done():
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (g *gatedStore) disconnect() {
	g.mu.Lock()
	g.cut = g.gen
	g.mu.Unlock()
}

func (g *gatedStore) reconnect() {
	g.mu.Lock()
	g.gen++
	close(g.broken)
	g.broken = make(chan struct{})
	g.mu.Unlock()
}

func TestRelistAfterDisconnect(t *testing.T) {
	g := newGated(t)
	ra := txn(t, g, store.Put(root+"a", []byte("a")))
	rb := txn(t, g, store.Put(root+"b", []byte("b")))
	rk := txn(t, g, store.Put(root+"keep", []byte("k")))
	var rec recorder
	c := start(t, g, nil, rec.add)
	rec.take()
	for deadline := time.Now().Add(timeout); g.watchCount() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache never watched")
		}
	}

	g.disconnect()
	txn(t, g, store.Delete(root+"a", ra))
	rb2 := txn(t, g, store.Update(root+"b", []byte("b2"), rb))
	rc := txn(t, g, store.Create(root+"c", []byte("c")))
	rd := txn(t, g, store.Create(root+"d", []byte("d")))
	txn(t, g, store.Delete(root+"d", rd)) // born and gone while disconnected: no change at all
	last := txn(t, g, store.Put("/other/x", []byte("x")))
	g.reconnect()
	waitFor(t, c, last)

	wantContents(t, c.Snapshot(),
		fmt.Sprintf("/r/b=b2@%d", rb2), fmt.Sprintf("/r/c=c@%d", rc), fmt.Sprintf("/r/keep=k@%d", rk))
	// Puts in key order, then deletions: all marked as coming from the re-list.
	want := []string{
		fmt.Sprintf("/r/b b@%d->b2@%d @%d relist", rb, rb2, last),
		fmt.Sprintf("/r/c -->c@%d @%d relist", rc, last),
		fmt.Sprintf("/r/a a@%d->- @%d relist", ra, last),
	}
	if got := fmtChanges(rec.wait(t, len(want))); !slices.Equal(got, want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A new watch (the second) follows as before.
	re := txn(t, g, store.Put(root+"e", []byte("e")))
	waitFor(t, c, re)
	if got := fmtChanges(rec.wait(t, 1)); !slices.Equal(got, []string{fmt.Sprintf("/r/e -->e@%d @%d", re, re)}) {
		t.Fatalf("after re-list: %q", got)
	}
	if watches := g.watchCount(); watches != 2 {
		t.Fatalf("%d watches, want 2 (one before, one after the re-list)", watches)
	}
}

// The same through memstore's real compaction: the cache falls behind (its
// subscriber blocks), the history it needs is compacted, and it re-lists.
func TestRelistAfterCompaction(t *testing.T) {
	st := newStore(t)
	ra := txn(t, st, store.Put(root+"a", []byte("a")))
	rb := txn(t, st, store.Put(root+"b", []byte("b")))
	blocked := make(chan struct{})
	release := make(chan struct{})
	var rec recorder
	c := start(t, st, nil, func(ch Change) {
		if ch.Key == root+"block" && !ch.Relist {
			close(blocked)
			<-release
		}
		rec.add(ch)
	})
	rec.take()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	rx := txn(t, st, store.Put(root+"block", []byte("x")))
	select {
	case <-blocked:
	case <-time.After(timeout):
		t.Fatal("subscriber not called")
	}
	txn(t, st, store.Delete(root+"a", ra))
	rc := txn(t, st, store.Create(root+"c", []byte("c")))
	rb2 := txn(t, st, store.Update(root+"b", []byte("b2"), rb))
	if err := st.Compact(t.Context(), rb2); err != nil {
		t.Fatal(err)
	}
	close(release)
	released = true
	waitFor(t, c, rb2)

	wantContents(t, c.Snapshot(),
		fmt.Sprintf("/r/b=b2@%d", rb2), fmt.Sprintf("/r/block=x@%d", rx), fmt.Sprintf("/r/c=c@%d", rc))
	// After the blocked change: a's delete (from the watch if it was already in
	// flight, else from the re-list), then the re-list's b and c. Revision rc was
	// compacted before the cache could read it, so only a re-list can show c.
	var changes []Change
	var sawDeleteA, sawC bool
	for deadline := time.Now().Add(timeout); !sawDeleteA || !sawC; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("changes missing the delete of a or the re-listed c:\n%s", strings.Join(fmtChanges(changes), "\n"))
		}
		for _, ch := range rec.take() {
			changes = append(changes, ch)
			switch {
			case ch.Key == root+"a" && ch.New == nil && ch.Old != nil:
				sawDeleteA = true
			case ch.Key == root+"c":
				if !ch.Relist || ch.Rev != rb2 || ch.Old != nil {
					t.Fatalf("c reported as %s, want a re-listed create", fmtChange(ch))
				}
				sawC = true
			}
		}
	}
}

func TestUndecodableSkipped(t *testing.T) {
	st := newStore(t)
	r1 := txn(t, st, store.Put(root+"bad1", []byte("bad at list")), store.Put(root+"skip1", []byte("skip")), store.Put(root+"ok", []byte("ok")))
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var rec recorder
	c := start(t, st, log, rec.add)
	if _, ok := c.Snapshot().Get(root + "bad1"); ok {
		t.Fatal("undecodable value cached at list")
	}
	if !strings.Contains(logs.String(), "undecodable") || !strings.Contains(logs.String(), root+"bad1") {
		t.Fatalf("list of an undecodable value not logged: %q", logs.String())
	}
	rec.take()

	txn(t, st, store.Put(root+"bad2", []byte("bad in watch")))
	rGood := txn(t, st, store.Put(root+"good", []byte("g")))
	rTurn := txn(t, st, store.Put(root+"good", []byte("bad now"))) // a cached key becomes undecodable
	rDel := txn(t, st, store.Delete(root+"bad1", store.Any))       // delete of a key never cached
	waitFor(t, c, rDel)
	if !strings.Contains(logs.String(), root+"bad2") {
		t.Fatalf("watched undecodable value not logged: %q", logs.String())
	}
	s := c.Snapshot()
	for _, k := range []string{"bad1", "bad2", "skip1", "good"} {
		if e, ok := s.Get(root + k); ok {
			t.Fatalf("%s cached: %+v", k, e)
		}
	}
	wantContents(t, s, fmt.Sprintf("/r/ok=ok@%d", r1))
	// Subscribers see the good key come and go, nothing about keys never cached.
	want := []string{
		fmt.Sprintf("/r/good -->g@%d @%d", rGood, rGood),
		fmt.Sprintf("/r/good g@%d->- @%d", rGood, rTurn),
	}
	if got := fmtChanges(rec.wait(t, len(want))); !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
}

func TestSubscribeInOrder(t *testing.T) {
	st := newStore(t)
	r0 := txn(t, st, store.Put(root+"pre", []byte("p")))
	var rec1, rec2 recorder
	c := start(t, st, nil, rec1.add, rec2.add)
	// The first list reports what it found.
	want := []string{fmt.Sprintf("/r/pre -->p@%d @%d relist", r0, r0)}

	rng := rand.New(rand.NewPCG(1, 2))
	revs := map[string]int64{"pre": r0}
	vals := map[string]string{"pre": "p"}
	var last int64
	for i := range 300 {
		// Up to three ops on distinct keys per transaction.
		keys := map[string]bool{}
		var ops []store.Op
		var exp []func(rev int64) string
		for range 1 + rng.IntN(3) {
			k := fmt.Sprintf("k%d", rng.IntN(10))
			if keys[k] {
				continue
			}
			keys[k] = true
			old, had := revs[k]
			oldVal := vals[k]
			if had && rng.IntN(3) == 0 {
				ops = append(ops, store.Delete(root+k, old))
				delete(revs, k)
				exp = append(exp, func(rev int64) string {
					return fmt.Sprintf("%s%s %s@%d->- @%d", root, k, oldVal, old, rev)
				})
				continue
			}
			v := fmt.Sprintf("v%d", i)
			ops = append(ops, store.Put(root+k, []byte(v)))
			vals[k] = v
			exp = append(exp, func(rev int64) string {
				revs[k] = rev
				if had {
					return fmt.Sprintf("%s%s %s@%d->%s@%d @%d", root, k, oldVal, old, v, rev, rev)
				}
				return fmt.Sprintf("%s%s -->%s@%d @%d", root, k, v, rev, rev)
			})
		}
		last = txn(t, st, ops...)
		for _, f := range exp {
			want = append(want, f(last))
		}
	}
	waitFor(t, c, last)
	got1, got2 := fmtChanges(rec1.wait(t, len(want))), fmtChanges(rec2.wait(t, len(want)))
	if !slices.Equal(got1, want) {
		for i := range min(len(got1), len(want)) {
			if got1[i] != want[i] {
				t.Fatalf("change %d = %q, want %q (%d vs %d changes)", i, got1[i], want[i], len(got1), len(want))
			}
		}
		t.Fatalf("%d changes, want %d", len(got1), len(want))
	}
	if !slices.Equal(got2, want) {
		t.Fatal("second subscriber saw different changes")
	}
}

// snapshotOf builds a snapshot holding keys directly (no store needed).
func snapshotOf(keys []string) *Snapshot {
	c := New(nil, "", decode, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var evs []store.Event
	for _, k := range keys {
		evs = append(evs, store.Event{Type: store.EventPut, KV: store.KV{Key: k, Value: []byte(k), Revision: 1}})
	}
	c.apply(store.WatchResponse{Revision: 1, Events: evs})
	return c.Snapshot()
}

func TestWalkFrom(t *testing.T) {
	keys := []string{
		"/a", "/a/", "/a/b", "/a/b/", "/a/b/1", "/a/b/10", "/a/b/2", "/a/b/2/x", "/a/b/3",
		"/a/bc", "/a/bc/1", "/a/c", "/b", "/b/1",
	}
	s := snapshotOf(keys)
	walkFrom := func(prefix, from string, limit int) []string {
		var out []string
		s.WalkFrom(prefix, from, func(e *Entry) bool {
			out = append(out, e.Key)
			return len(out) < limit
		})
		return out
	}
	naive := func(prefix, from string, limit int) []string {
		var out []string
		for _, k := range keys { // keys are sorted
			if strings.HasPrefix(k, prefix) && k >= from && len(out) < limit {
				out = append(out, k)
			}
		}
		return out
	}
	if !sort.StringsAreSorted(keys) {
		t.Fatal("test keys not sorted")
	}
	cases := []struct{ prefix, from string }{
		{"/a/b/", ""},
		{"/a/b/", "/a/b/"},
		{"/a/b/", "/a/b/10"},
		{"/a/b/", "/a/b/10\x00"},
		{"/a/b/", "/a/b/2/"},
		{"/a/b/", "/a/b/3\x00"}, // past the last: nothing, and not the sibling /a/bc
		{"/a/b/", "/a/bb"},
		{"/a/b/", "/a/a"}, // before the prefix: starts at the prefix
		{"/a/", "/a/b/2"},
		{"/a/b", "/a/b/3"}, // a prefix without slash includes /a/bc
		{"", "/a/c"},
		{"/z/", ""},
		{"/a/b/", "/z"},
	}
	for _, tc := range cases {
		got, want := walkFrom(tc.prefix, tc.from, 100), naive(tc.prefix, tc.from, 100)
		if !slices.Equal(got, want) {
			t.Errorf("WalkFrom(%q, %q) = %q, want %q", tc.prefix, tc.from, got, want)
		}
	}
	// fn returning false stops the walk.
	if got := walkFrom("/a/", "", 2); !slices.Equal(got, []string{"/a/", "/a/b"}) {
		t.Errorf("limited walk = %q", got)
	}

	// Paging through a prefix, resuming after the last key seen, visits every key once.
	for _, page := range []int{1, 2, 3, 100} {
		var all []string
		from := ""
		for {
			got := walkFrom("/a/b/", from, page)
			all = append(all, got...)
			if len(got) < page {
				break
			}
			from = got[len(got)-1] + "\x00"
		}
		if want := naive("/a/b/", "", 100); !slices.Equal(all, want) {
			t.Errorf("pages of %d = %q, want %q", page, all, want)
		}
	}
	if n := s.Count("/a/b/"); n != 6 {
		t.Errorf("Count(/a/b/) = %d", n)
	}
}

// A larger random check of WalkFrom against a sorted slice.
func TestWalkFromRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alpha := "ab/"
	randKey := func() string {
		n := 1 + rng.IntN(6)
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return "/" + string(b)
	}
	set := map[string]bool{}
	for range 300 {
		set[randKey()] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := snapshotOf(keys)
	for range 2000 {
		prefix, from := randKey(), randKey()
		prefix = prefix[:1+rng.IntN(len(prefix))]
		var got, want []string
		s.WalkFrom(prefix, from, func(e *Entry) bool { got = append(got, e.Key); return true })
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) && k >= from {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("WalkFrom(%q, %q) = %q, want %q", prefix, from, got, want)
		}
	}
}

func BenchmarkCacheApply(b *testing.B) {
	const n = 100_000
	resps := make([]store.WatchResponse, n)
	for i := range resps {
		rev := int64(i + 1)
		key := fmt.Sprintf("/r/tasks/cluster-%d/%08d", i%10, rng32(i))
		resps[i] = store.WatchResponse{Revision: rev, Events: []store.Event{{
			Type: store.EventPut, KV: store.KV{Key: key, Value: []byte("task"), Revision: rev},
		}}}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		c := New(nil, root, decode, log)
		for _, wr := range resps {
			c.apply(wr)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
}

func BenchmarkSnapshotGet(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/r/tasks/cluster-%d/%08d", i%10, rng32(i))
	}
	s := snapshotOf(keys)
	i := 0
	for b.Loop() {
		if _, ok := s.Get(keys[i%n]); !ok {
			b.Fatal("missing key")
		}
		i++
	}
}

// rng32 spreads i over a wide key space deterministically.
func rng32(i int) uint32 { return uint32(i) * 2654435761 }
