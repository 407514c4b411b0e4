// Package cache keeps a watch-fed, decoded copy of everything under one store
// prefix. Every API read and list is answered from it; nothing reads etcd directly.
//
//	store ──List──▶ tree@rev ──Watch(rev)──▶ tree@rev' ──▶ Snapshot() (immutable)
//
// The tree is an immutable radix tree: a write makes a new root, so a Snapshot is
// one pointer and stays consistent at its revision however long it is held.
// Objects in it are shared between readers and must never be mutated: copy first.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	iradix "github.com/hashicorp/go-immutable-radix/v2"

	"github.com/ecsd/ecsd/store"
)

// Decoder turns a stored value into the object readers get. A value that does
// not decode is logged and skipped: the cache never holds half an object.
type Decoder func(key string, value []byte) (any, error)

// Entry is one decoded key at its modification revision.
type Entry struct {
	Key string
	Rev int64
	Obj any
}

// Change is delivered to subscribers for every put or delete the watch applies.
type Change struct {
	Key    string
	Old    *Entry // nil when the key was created
	New    *Entry // nil when the key was deleted
	Rev    int64
	Relist bool // true when the change comes from a full re-list
}

// Cache is the watch-fed view of one prefix.
type Cache struct {
	st     store.Store
	prefix string
	decode Decoder
	log    *slog.Logger

	snap atomic.Pointer[Snapshot]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the revision moves
	ready   chan struct{}
	subs    []func(Change)
}

// New returns a cache of prefix; call Run to fill and follow it.
func New(st store.Store, prefix string, decode Decoder, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.Default()
	}
	c := &Cache{st: st, prefix: prefix, decode: decode, log: log,
		changed: make(chan struct{}), ready: make(chan struct{})}
	c.snap.Store(&Snapshot{tree: iradix.New[*Entry]()})
	return c
}

// Subscribe registers fn to be called, in order, on the cache's goroutine for
// every change applied. fn must be quick and must not block (enqueue and return).
// Changes applied before Subscribe are not replayed: subscribers start from
// the current Snapshot.
func (c *Cache) Subscribe(fn func(Change)) {
	c.mu.Lock()
	c.subs = append(c.subs, fn)
	c.mu.Unlock()
}

// Ready is closed once the first list has been loaded.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Snapshot returns the current immutable view.
func (c *Cache) Snapshot() *Snapshot { return c.snap.Load() }

// Rev is the store revision the cache has caught up with.
func (c *Cache) Rev() int64 { return c.snap.Load().rev }

// WaitFor blocks until the cache has applied revision rev (read-your-writes
// after a Txn) or ctx ends.
func (c *Cache) WaitFor(ctx context.Context, rev int64) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if c.Rev() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cache: waiting for revision %d (at %d): %w", rev, c.Rev(), ctx.Err())
		}
	}
}

// Run lists the prefix, then follows its watch until ctx ends; on compaction or a
// broken watch it lists again, so the cache is always a prefix of the store's history.
func (c *Cache) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := c.relist(ctx)
		if err != nil {
			c.log.Warn("cache list failed; retrying", "prefix", c.prefix, "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		followed, err := c.follow(ctx, rev)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, store.ErrCompacted) {
			// The watch fell behind the store's history: re-list at once.
			c.log.Info("cache watch compacted; re-listing", "prefix", c.prefix, "rev", rev)
			backoff = 100 * time.Millisecond
			continue
		}
		// A watch that keeps failing at once must not spin list after list.
		if followed {
			backoff = 100 * time.Millisecond
		}
		c.log.Warn("cache watch ended; re-listing", "prefix", c.prefix, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (c *Cache) relist(ctx context.Context) (int64, error) {
	kvs, rev, err := c.st.List(ctx, c.prefix)
	if err != nil {
		return 0, err
	}
	old := c.snap.Load()
	txn := iradix.New[*Entry]().Txn()
	seen := make(map[string]bool, len(kvs))
	var changes []Change
	for _, kv := range kvs {
		e := c.entry(kv)
		if e == nil {
			continue
		}
		txn.Insert([]byte(kv.Key), e)
		seen[kv.Key] = true
		prev, had := old.tree.Get([]byte(kv.Key))
		if !had || prev.Rev != e.Rev {
			ch := Change{Key: kv.Key, New: e, Rev: rev, Relist: true}
			if had {
				ch.Old = prev
			}
			changes = append(changes, ch)
		}
	}
	old.tree.Root().Walk(func(k []byte, e *Entry) bool {
		if !seen[string(k)] {
			changes = append(changes, Change{Key: string(k), Old: e, Rev: rev, Relist: true})
		}
		return false
	})
	c.publish(&Snapshot{tree: txn.Commit(), rev: rev}, changes)
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
	return rev, nil
}

// follow applies the watch from rev until it fails; followed reports whether it
// delivered anything first.
func (c *Cache) follow(ctx context.Context, rev int64) (followed bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range c.st.Watch(wctx, c.prefix, rev) {
		if wr.Err != nil {
			return followed, wr.Err
		}
		followed = true
		c.apply(wr)
	}
	if err := ctx.Err(); err != nil {
		return followed, err
	}
	return followed, errors.New("watch channel closed")
}

func (c *Cache) apply(wr store.WatchResponse) {
	cur := c.snap.Load()
	if wr.Revision <= cur.rev && len(wr.Events) == 0 {
		return
	}
	txn := cur.tree.Txn()
	changes := make([]Change, 0, len(wr.Events))
	for _, ev := range wr.Events {
		k := []byte(ev.KV.Key)
		prev, had := txn.Get(k)
		ch := Change{Key: ev.KV.Key, Rev: ev.KV.Revision}
		if had {
			ch.Old = prev
		}
		switch ev.Type {
		case store.EventPut:
			e := c.entry(ev.KV)
			if e == nil {
				txn.Delete(k)
			} else {
				txn.Insert(k, e)
				ch.New = e
			}
		case store.EventDelete:
			txn.Delete(k)
		}
		if ch.Old == nil && ch.New == nil {
			continue // a key the cache never held (undecodable or skipped): nothing changed
		}
		changes = append(changes, ch)
	}
	rev := max(wr.Revision, cur.rev)
	c.publish(&Snapshot{tree: txn.Commit(), rev: rev}, changes)
}

func (c *Cache) entry(kv store.KV) *Entry {
	obj, err := c.decode(kv.Key, kv.Value)
	if err != nil {
		c.log.Error("cache: undecodable value skipped", "key", kv.Key, "rev", kv.Revision, "err", err)
		return nil
	}
	if obj == nil {
		return nil
	}
	return &Entry{Key: kv.Key, Rev: kv.Revision, Obj: obj}
}

func (c *Cache) publish(s *Snapshot, changes []Change) {
	c.snap.Store(s)
	c.mu.Lock()
	subs := c.subs
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	for _, ch := range changes {
		for _, fn := range subs {
			fn(ch)
		}
	}
}

// Peek returns the record at key as a *T, shared with every other reader of
// the snapshot: never mutate it (resource.Clone gives a private copy).
func Peek[T any](snap *Snapshot, key string) (*T, bool) {
	e, ok := snap.Get(key)
	if !ok {
		return nil, false
	}
	obj, ok := e.Obj.(*T)
	return obj, ok
}
