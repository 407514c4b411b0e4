// Package memstore is an in-memory store.Store for unit tests. It is never used
// by the ecsd binary: the one real backend is etcd (store/etcd).
//
// It follows etcd's semantics closely enough that store/storetest runs unchanged
// against both: one global revision, bumped once per transaction that writes;
// per-key modification revisions; all-or-nothing conditional transactions;
// watches that replay history after a revision and then follow; bounded history,
// with ErrCompacted for a watch that asks for what was discarded.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ecsd/ecsd/store"
)

// DefaultHistory is how many revisions of events a Store keeps for watches,
// matching the embedded etcd's auto-compaction retention.
const DefaultHistory = 10000

// ErrClosed is returned by every call on a closed Store.
var ErrClosed = errors.New("memstore: closed")

// Store is an in-memory store.Store and store.Resetter.
type Store struct {
	mu         sync.Mutex
	rev        int64
	kvs        map[string]store.KV
	history    []revision // contiguous revisions, oldest first
	maxHistory int
	compactRev int64         // history before this revision is gone (etcd's compact revision)
	changed    chan struct{} // closed and replaced on every write: wakes watchers
	done       chan struct{} // closed by Close
	closed     bool
}

// revision is the events of one committed transaction, in op order.
type revision struct {
	rev    int64
	events []store.Event
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Resetter = (*Store)(nil)
)

// Option configures New.
type Option func(*Store)

// WithHistory keeps the events of the last n revisions (n >= 1) for watches.
func WithHistory(n int) Option {
	return func(s *Store) { s.maxHistory = max(n, 1) }
}

// New returns an empty store at revision 0.
func New(opts ...Option) *Store {
	s := &Store{
		kvs:        make(map[string]store.KV),
		maxHistory: DefaultHistory,
		changed:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// lock takes the mutex unless the store is closed or ctx has ended.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Rev is the current store revision.
func (s *Store) Rev() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.lock(ctx); err != nil {
		return store.KV{}, err
	}
	defer s.mu.Unlock()
	kv, ok := s.kvs[key]
	if !ok {
		return store.KV{}, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return cloneKV(kv), nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	out := make([]store.KV, 0)
	for k, kv := range s.kvs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, cloneKV(kv))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, s.rev, nil
}

func (s *Store) Txn(ctx context.Context, ops ...store.Op) (int64, error) {
	// Like etcd, a transaction may write a key only once.
	writes := make(map[string]bool, len(ops))
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut, store.OpDelete:
			if writes[op.Key] {
				return 0, fmt.Errorf("memstore txn: key %s written twice in one transaction", op.Key)
			}
			writes[op.Key] = true
		case store.OpCheck:
		default:
			return 0, fmt.Errorf("memstore txn: unknown op kind %d", op.Kind)
		}
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.Expect == store.Any {
			continue
		}
		if cur := s.kvs[op.Key].Revision; cur != op.Expect {
			return 0, fmt.Errorf("memstore txn on %s: expected revision %d, have %d: %w", op.Key, op.Expect, cur, store.ErrConflict)
		}
	}
	rev := s.rev + 1
	var events []store.Event
	for _, op := range ops {
		switch op.Kind {
		case store.OpPut:
			kv := store.KV{Key: op.Key, Value: bytes.Clone(op.Value), Revision: rev}
			s.kvs[op.Key] = kv
			events = append(events, store.Event{Type: store.EventPut, KV: kv})
		case store.OpDelete:
			if _, ok := s.kvs[op.Key]; ok {
				delete(s.kvs, op.Key)
				events = append(events, store.Event{Type: store.EventDelete, KV: store.KV{Key: op.Key, Revision: rev}})
			}
		}
	}
	s.commit(events)
	return s.rev, nil
}

// DeletePrefix removes every key under prefix in one revision.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	rev := s.rev + 1
	var keys []string
	for k := range s.kvs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	events := make([]store.Event, 0, len(keys))
	for _, k := range keys {
		delete(s.kvs, k)
		events = append(events, store.Event{Type: store.EventDelete, KV: store.KV{Key: k, Revision: rev}})
	}
	s.commit(events)
	return s.rev, nil
}

// commit records the events of one transaction as the next revision. Like etcd,
// a transaction that changed nothing does not move the revision. Called with mu held.
func (s *Store) commit(events []store.Event) {
	if len(events) == 0 {
		return
	}
	s.rev++
	s.history = append(s.history, revision{rev: s.rev, events: events})
	if n := len(s.history) - s.maxHistory; n > 0 {
		s.history = append(s.history[:0:0], s.history[n:]...)
		s.compactRev = s.history[0].rev
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Compact discards the watch history before rev, like etcd's Compact: a watch
// that needs a revision older than rev then fails with ErrCompacted.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if rev > s.rev {
		return fmt.Errorf("memstore compact %d: beyond current revision %d", rev, s.rev)
	}
	if rev <= s.compactRev {
		return fmt.Errorf("memstore compact %d: already compacted at %d: %w", rev, s.compactRev, store.ErrCompacted)
	}
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rev >= rev })
	s.history = append(s.history[:0:0], s.history[i:]...)
	s.compactRev = rev
	// Wake watchers so a lagging one notices it has been compacted past.
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Watch streams the changes under prefix after revision after, one response per
// revision, until ctx ends or the store closes. The channel is unbuffered: a
// slow reader holds its watcher back, and if history it still needs is compacted
// meanwhile it gets ErrCompacted, as with etcd.
func (s *Store) Watch(ctx context.Context, prefix string, after int64) <-chan store.WatchResponse {
	out := make(chan store.WatchResponse)
	go func() {
		defer close(out)
		next := after + 1 // first revision not yet delivered
		for {
			resp, wait, err := s.nextResponse(prefix, &next)
			if err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				resp = store.WatchResponse{Err: err}
			}
			if resp.Revision != 0 || resp.Err != nil {
				select {
				case out <- resp:
				case <-ctx.Done():
					return
				case <-s.done:
					return
				}
				if resp.Err != nil {
					return
				}
				continue
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		}
	}()
	return out
}

// nextResponse returns the first revision >= *next with events under prefix and
// advances *next past it; or, when there is none yet, a channel that is closed
// on the next write.
func (s *Store) nextResponse(prefix string, next *int64) (store.WatchResponse, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.WatchResponse{}, nil, ErrClosed
	}
	if *next < s.compactRev {
		return store.WatchResponse{}, nil, fmt.Errorf("memstore watch %s from revision %d: compacted at %d: %w",
			prefix, *next, s.compactRev, store.ErrCompacted)
	}
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rev >= *next })
	for ; i < len(s.history); i++ {
		h := s.history[i]
		var evs []store.Event
		for _, ev := range h.events {
			if strings.HasPrefix(ev.KV.Key, prefix) {
				evs = append(evs, store.Event{Type: ev.Type, KV: cloneKV(ev.KV)})
			}
		}
		if len(evs) > 0 {
			*next = h.rev + 1
			return store.WatchResponse{Revision: h.rev, Events: evs}, nil, nil
		}
	}
	*next = max(*next, s.rev+1)
	return store.WatchResponse{}, s.changed, nil
}

// Close ends every watch; later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return nil
}

func cloneKV(kv store.KV) store.KV {
	kv.Value = bytes.Clone(kv.Value)
	return kv
}
