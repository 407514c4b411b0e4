package cache

import (
	iradix "github.com/hashicorp/go-immutable-radix/v2"
)

// Snapshot is an immutable view of the cache at one store revision.
type Snapshot struct {
	tree *iradix.Tree[*Entry]
	rev  int64
}

// Rev is the store revision the snapshot reflects.
func (s *Snapshot) Rev() int64 { return s.rev }

// Get returns the entry at key.
func (s *Snapshot) Get(key string) (*Entry, bool) {
	return s.tree.Get([]byte(key))
}

// Walk calls fn for every entry under prefix in key order until fn returns false.
func (s *Snapshot) Walk(prefix string, fn func(*Entry) bool) {
	s.tree.Root().WalkPrefix([]byte(prefix), func(_ []byte, e *Entry) bool {
		return !fn(e)
	})
}

// WalkFrom calls fn for entries under prefix whose key is >= from, in key order,
// until fn returns false. Paginated lists resume here.
func (s *Snapshot) WalkFrom(prefix, from string, fn func(*Entry) bool) {
	it := s.tree.Root().Iterator()
	it.SeekLowerBound([]byte(max(prefix, from)))
	for k, e, ok := it.Next(); ok; k, e, ok = it.Next() {
		if len(k) < len(prefix) || string(k[:len(prefix)]) != prefix {
			return
		}
		if !fn(e) {
			return
		}
	}
}

// Count returns the number of entries under prefix.
func (s *Snapshot) Count(prefix string) int {
	n := 0
	s.Walk(prefix, func(*Entry) bool { n++; return true })
	return n
}
