// Package runtime runs controllers: a rate-limited work queue of keys, a
// manager that runs the controllers only while this server holds leadership,
// and an injectable clock. Controllers are level-triggered reconcilers: a key
// says "look at this object again", never what changed.
package runtime

import (
	"sync"
	"time"
)

// Queue is a work queue of keys with these guarantees:
//   - a key is queued at most once however often it is added (dedup);
//   - a key is never handed to two workers at once: adding a key that is
//     being processed marks it dirty, and Done queues it again;
//   - AddRateLimited delays a key exponentially per consecutive failure
//     (Forget resets it), AddAfter delays it by a given time.
type Queue struct {
	clock     Clock
	baseDelay time.Duration
	maxDelay  time.Duration

	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	queued     map[string]bool // in order
	processing map[string]bool
	dirty      map[string]bool // added while processing
	failures   map[string]int
	timers     map[string]timerEntry
	shutdown   bool
}

type timerEntry struct {
	at    time.Time
	timer Timer
}

// QueueConfig tunes a queue; zero values take the defaults.
type QueueConfig struct {
	Clock Clock
	// BaseDelay is the first retry delay after a failure (default 10ms);
	// it doubles per consecutive failure up to MaxDelay (default 30s).
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// NewQueue returns an empty queue.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = 10 * time.Millisecond
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 30 * time.Second
	}
	q := &Queue{clock: cfg.Clock, baseDelay: cfg.BaseDelay, maxDelay: cfg.MaxDelay,
		queued: map[string]bool{}, processing: map[string]bool{}, dirty: map[string]bool{},
		failures: map[string]int{}, timers: map[string]timerEntry{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key now.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown {
		return
	}
	if q.processing[key] {
		q.dirty[key] = true
		return
	}
	if q.queued[key] {
		return
	}
	q.queued[key] = true
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter queues key after d. An earlier pending delay for the key wins.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := q.clock.Now().Add(d)
	if te, ok := q.timers[key]; ok {
		if !te.at.After(at) {
			return
		}
		te.timer.Stop()
	}
	var t Timer
	t = q.clock.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if te, ok := q.timers[key]; ok && te.timer == t {
			delete(q.timers, key)
		}
		q.addLocked(key)
	})
	q.timers[key] = timerEntry{at: at, timer: t}
}

// AddRateLimited queues key after its exponential backoff and counts a
// failure.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	d := q.baseDelay
	for i := 0; i < n && d < q.maxDelay; i++ {
		d *= 2
	}
	q.AddAfter(key, min(d, q.maxDelay))
}

// Forget resets key's failure count (call after a success).
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	delete(q.failures, key)
	q.mu.Unlock()
}

// Failures is key's consecutive failure count.
func (q *Queue) Failures(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Get blocks for the next key; ok is false once the queue is shut down.
// The caller must call Done(key) when it has finished with it.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	key = q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	delete(q.queued, key)
	q.processing[key] = true
	return key, true
}

// Done marks key processed; a key added meanwhile is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// Len is the number of keys waiting (not delayed, not in process).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Busy reports whether any key is queued, delayed or in process.
func (q *Queue) Busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) > 0 || len(q.processing) > 0 || len(q.dirty) > 0
}

// ShutDown stops the queue: Get returns false, pending delays are dropped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for k, te := range q.timers {
		te.timer.Stop()
		delete(q.timers, k)
	}
	q.cond.Broadcast()
}
