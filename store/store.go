// Package store is ecsd's small compare-and-swap interface over a key-value store.
// etcd (store/etcd) is the one real backend; store/memstore exists for unit tests.
// One conformance suite (store/storetest) runs against both.
package store

import (
	"context"
	"errors"
)

// Errors callers branch on. Implementations wrap them with %w.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("store: key not found")
	// ErrConflict: a compare-and-swap condition failed; refresh and retry.
	ErrConflict = errors.New("store: revision conflict")
	// ErrCompacted: a watch asked for history the store no longer keeps; re-list.
	ErrCompacted = errors.New("store: revision compacted")
)

// KV is one key at one revision. Revision is the key's modification revision.
type KV struct {
	Key      string
	Value    []byte
	Revision int64
}

// OpKind says what an Op does.
type OpKind int

const (
	// OpPut writes Value if the key's revision equals Expect
	// (0: the key must not exist; Any: unconditional).
	OpPut OpKind = iota
	// OpDelete removes the key if its revision equals Expect (Any: unconditional).
	OpDelete
	// OpCheck writes nothing; it only asserts the key's revision equals Expect.
	OpCheck
)

// Any as an expected revision disables the comparison.
const Any int64 = -1

// Op is one conditional operation of a transaction.
type Op struct {
	Kind   OpKind
	Key    string
	Value  []byte
	Expect int64
}

// Create puts a key that must not exist yet.
func Create(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value, Expect: 0} }

// Update puts a key whose revision must still be rev.
func Update(key string, value []byte, rev int64) Op {
	return Op{Kind: OpPut, Key: key, Value: value, Expect: rev}
}

// Put writes a key unconditionally.
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value, Expect: Any} }

// Delete removes a key whose revision must still be rev (Any: whatever it is).
func Delete(key string, rev int64) Op { return Op{Kind: OpDelete, Key: key, Expect: rev} }

// Check asserts a key's revision without writing it (0: absent).
func Check(key string, rev int64) Op { return Op{Kind: OpCheck, Key: key, Expect: rev} }

// EventType says whether a watched key was put or deleted.
type EventType int

const (
	EventPut EventType = iota
	EventDelete
)

// Event is one change seen by a watch. For deletes, KV.Value is empty and
// KV.Revision is the revision of the delete.
type Event struct {
	Type EventType
	KV   KV
}

// WatchResponse carries the events of one store revision, in order, or an error
// after which the channel is closed (ErrCompacted means: list again).
type WatchResponse struct {
	Revision int64
	Events   []Event
	Err      error
}

// Store is what ecsd needs from etcd.
type Store interface {
	// Get returns the key or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key under prefix, sorted, and the store revision read at.
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// Txn applies all ops atomically if every condition holds, and returns the
	// new store revision; otherwise nothing is written and the error wraps ErrConflict.
	Txn(ctx context.Context, ops ...Op) (int64, error)
	// Watch streams changes under prefix after revision after (exclusive) until ctx ends.
	Watch(ctx context.Context, prefix string, after int64) <-chan WatchResponse
	// Close releases the store.
	Close() error
}

// Resetter is implemented by stores that can drop a whole prefix at once
// (the dev-mode reset endpoint).
type Resetter interface {
	DeletePrefix(ctx context.Context, prefix string) (int64, error)
}
