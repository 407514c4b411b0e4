// Package taskgc collects what tasks leave behind: task records STOPPED for
// longer than the retention (ECS keeps stopped tasks describable for about an
// hour), and client-token records past their lifetime (24 hours).
//
//	every Interval: snapshot ──Decide(now)──▶ keys to delete ──CAS delete each──▶ store
//
// Decide is pure (snapshot and time in, keys out); Run does the I/O. Each
// delete is conditioned on the revision the decision saw, so a record changed
// since (a task tagged, a token reused after expiry) is left for the next pass.
package taskgc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Defaults.
const (
	DefaultInterval       = time.Minute
	DefaultRetention      = time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
	// deleteTimeout bounds one delete against the store.
	deleteTimeout = 10 * time.Second
)

// Snapshotter is where the collector reads from (the cache).
type Snapshotter interface {
	Snapshot() *cache.Snapshot
}

// Config configures a Collector.
type Config struct {
	Store store.Store
	Cache Snapshotter
	// Retention is how long a STOPPED task stays (default 1 h).
	Retention time.Duration
	// IdempotencyTTL is how long a client token is remembered (default 24 h).
	IdempotencyTTL time.Duration
	// Interval between passes (default 1 min).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Collector deletes expired task and client-token records.
type Collector struct {
	cfg Config
	log *slog.Logger
}

// New returns a collector; Store and Cache are required.
func New(cfg Config) (*Collector, error) {
	if cfg.Store == nil || cfg.Cache == nil {
		return nil, errors.New("taskgc: Store and Cache are required")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Collector{cfg: cfg, log: cfg.Logger.With("component", "taskgc")}, nil
}

// Run collects once at start and then every Interval until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.Collect(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("collect", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Victim is one record to delete, at the revision it was judged on.
type Victim struct {
	Key string
	Rev int64
}

// Decide lists the records in snap that have expired at now.
func Decide(snap *cache.Snapshot, now time.Time, retention, idempotencyTTL time.Duration) []Victim {
	var out []Victim
	snap.Walk(resource.Root, func(e *cache.Entry) bool {
		switch r := e.Obj.(type) {
		case *resource.Task:
			if r.LastStatus == "STOPPED" && r.StoppedAt != nil && now.Sub(r.StoppedAtTime()) >= retention {
				out = append(out, Victim{Key: e.Key, Rev: e.Rev})
			}
		case *resource.Idempotency:
			if now.Sub(r.CreatedAt) >= idempotencyTTL {
				out = append(out, Victim{Key: e.Key, Rev: e.Rev})
			}
		}
		return true
	})
	return out
}

// Collect runs one pass and returns how many records it deleted.
func (c *Collector) Collect(ctx context.Context) (int, error) {
	victims := Decide(c.cfg.Cache.Snapshot(), c.cfg.Now(), c.cfg.Retention, c.cfg.IdempotencyTTL)
	deleted := 0
	var firstErr error
	for _, v := range victims {
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
		dctx, cancel := context.WithTimeout(ctx, deleteTimeout)
		_, err := c.cfg.Store.Txn(dctx, store.Delete(v.Key, v.Rev))
		cancel()
		switch {
		case err == nil:
			deleted++
		case errors.Is(err, store.ErrConflict):
			// Changed or already gone since the snapshot: judged again next pass.
		default:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if deleted > 0 {
		c.log.Debug("collected", "records", deleted)
	}
	return deleted, firstErr
}

// Name identifies the collector to the controller manager.
func (c *Collector) Name() string { return "taskgc" }
