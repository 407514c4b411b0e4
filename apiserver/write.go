package apiserver

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// maxCASAttempts bounds read-modify-write retries on revision conflicts.
const maxCASAttempts = 10

// Scope is the account and region the call acts in.
func (c *Call) Scope() resource.Scope {
	return resource.Scope{Account: c.Identity.Account, Region: c.Identity.Region}
}

// Snapshot is the cache's current view; handlers read only from it.
func (c *Call) Snapshot() *cache.Snapshot { return c.s.cache.Snapshot() }

// Commit applies ops atomically and waits until the cache shows the result, so a
// client's next call reads its own write. A failed condition returns an error
// wrapping store.ErrConflict.
func (c *Call) Commit(ops ...store.Op) (int64, error) {
	rev, err := c.s.st.Txn(c.ctx, ops...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := c.s.waitCtx(c.ctx)
	defer cancel()
	if err := c.s.cache.WaitFor(ctx, rev); err != nil {
		return 0, err
	}
	return rev, nil
}

// Get returns a private copy of the record at key from the cache, with its revision.
func Get[T any](c *Call, key string) (*T, int64, bool) {
	e, ok := c.Snapshot().Get(key)
	if !ok {
		return nil, 0, false
	}
	obj, ok := e.Obj.(*T)
	if !ok {
		return nil, 0, false
	}
	return Clone(obj), e.Rev, true
}

// Peek returns the shared, read-only record at key (never mutate it).
func Peek[T any](snap *cache.Snapshot, key string) (*T, bool) { return cache.Peek[T](snap, key) }

// Clone deep-copies a record (cache objects are shared and must not be mutated).
func Clone[T any](v *T) *T { return resource.Clone(v) }

// Mutate is the read-modify-CAS loop on one key: fn gets a private copy of the
// current record (nil if absent) and returns the next one (nil deletes the key),
// or an error that aborts without writing. Conflicts retry with fresh state.
func Mutate[T any](c *Call, key string, fn func(cur *T) (*T, error)) (*T, error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, rev, _ := Get[T](c, key)
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		var op store.Op
		switch {
		case next == nil && cur == nil:
			return nil, nil
		case next == nil:
			op = store.Delete(key, rev)
		default:
			op = store.Update(key, resource.Encode(next), rev)
		}
		if _, err := c.Commit(op); err != nil {
			if errors.Is(err, store.ErrConflict) {
				if err := c.afterConflict(key, attempt); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		return next, nil
	}
	return nil, ecs.Errorf(ecs.CodeUpdateInProgress, "%s is being changed by another request; retry.", key)
}

// afterConflict runs between compare-and-swap attempts on key: it waits until the
// cache shows the write that won (so the retry does not spin on a stale copy)
// and then a short jittered pause, so writers that collided do not collide again
// in lock step.
func (c *Call) afterConflict(key string, attempt int) error {
	if kv, err := c.s.st.Get(c.ctx, key); err == nil {
		ctx, cancel := c.s.waitCtx(c.ctx)
		err := c.s.cache.WaitFor(ctx, kv.Revision)
		cancel()
		if err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 4)))
	select {
	case <-time.After(pause):
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}
