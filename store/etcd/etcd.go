// Package etcd implements store.Store on etcd v3, embedded in the data dir or as
// a client of an external cluster. It is the only package that imports etcd.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecsd/ecsd/store"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Named timeouts for calls into etcd.
const (
	startTimeout = 60 * time.Second
	dialTimeout  = 5 * time.Second
	opTimeout    = 10 * time.Second
)

// MaxTxnOps is the embedded member's limit on operations per transaction.
const MaxTxnOps = 4096

// MaxRequestBytes bounds one request (a transaction) on the embedded member and
// what the client sends.
const MaxRequestBytes = 10 << 20 // etcd warns above 10 MiB

// Config selects embedded or external etcd.
type Config struct {
	// Endpoints of an external cluster; empty runs etcd embedded in DataDir.
	Endpoints []string
	// DataDir holds the embedded member's data (DataDir/etcd).
	DataDir string
	// ClientURL and PeerURL for the embedded member; default to free loopback ports.
	ClientURL string
	PeerURL   string
	Logger    *slog.Logger
}

// Store is store.Store on etcd.
type Store struct {
	cli       *clientv3.Client
	server    *embed.Etcd
	log       *slog.Logger
	closing   atomic.Bool // set by Close: the embedded member's shutdown noise is expected
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open starts embedded etcd (or dials the external cluster) and returns the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{log: log}
	endpoints := cfg.Endpoints
	if len(endpoints) == 0 {
		srv, clientURL, err := startEmbedded(cfg, log, &s.closing)
		if err != nil {
			return nil, err
		}
		s.server = srv
		endpoints = []string{clientURL}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dialTimeout,
		// Allow the transactions the embedded member accepts (plus framing).
		MaxCallSendMsgSize: MaxRequestBytes + 1<<20,
		MaxCallRecvMsgSize: 64 << 20,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd: connect %v: %w", endpoints, err)
	}
	s.cli = cli
	// Prove the connection before serving: a status call on the first endpoint.
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, "/ecsd-ping"); err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd: %v not answering: %w", endpoints, err)
	}
	return s, nil
}

func startEmbedded(cfg Config, log *slog.Logger, closing *atomic.Bool) (*embed.Etcd, string, error) {
	if cfg.DataDir == "" {
		return nil, "", errors.New("etcd: embedded etcd needs a data dir")
	}
	dir := filepath.Join(cfg.DataDir, "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("etcd: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "ecsd"
	ec.Dir = dir
	ec.Logger = "zap"
	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(&slogCore{log: log.With("component", "etcd"), closing: closing}))
	clientURL := cfg.ClientURL
	if clientURL == "" {
		clientURL = "http://127.0.0.1:0"
	}
	peerURL := cfg.PeerURL
	if peerURL == "" {
		peerURL = "http://127.0.0.1:0"
	}
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, "", fmt.Errorf("etcd: client url: %w", err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, "", fmt.Errorf("etcd: peer url: %w", err)
	}
	ec.ListenClientUrls = []url.URL{*cu}
	ec.AdvertiseClientUrls = []url.URL{*cu}
	ec.ListenPeerUrls = []url.URL{*pu}
	ec.AdvertisePeerUrls = []url.URL{*pu}
	ec.InitialCluster = ec.Name + "=" + pu.String()
	// A single local member: keep history bounded and the backend small.
	ec.AutoCompactionMode = "revision"
	ec.AutoCompactionRetention = "10000"
	ec.QuotaBackendBytes = 4 << 30
	// Plans commit many tasks and instances atomically; etcd's default of 128
	// operations per transaction is too small for a service scaling by hundreds.
	// (An external cluster needs --max-txn-ops raised likewise.)
	ec.MaxTxnOps = MaxTxnOps
	// Tasks carry a copy of their definition: a plan of a few hundred tasks
	// exceeds etcd's default 1.5 MiB request.
	ec.MaxRequestBytes = MaxRequestBytes
	srv, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, "", fmt.Errorf("etcd: start embedded member in %s: %w", dir, err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(startTimeout):
		srv.Close()
		return nil, "", fmt.Errorf("etcd: embedded member not ready after %s", startTimeout)
	}
	addr := srv.Clients[0].Addr().String()
	log.Info("embedded etcd ready", "dir", dir, "client", addr)
	return srv, "http://" + addr, nil
}

// Client exposes the etcd client for leader election (used by the runtime package
// through a narrow interface).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Close closes the client and stops the embedded member; later calls do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		if s.cli != nil {
			s.cli.Close()
		}
		if s.server != nil {
			s.server.Close()
		}
	})
	return nil
}

// Compact discards the history before rev (etcd's compaction): watches after an
// older revision then fail with store.ErrCompacted and their caches re-list.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			err = fmt.Errorf("%w: %w", store.ErrCompacted, err)
		}
		return fmt.Errorf("etcd compact %d: %w", rev, err)
	}
	return nil
}

func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	r, err := s.cli.Get(ctx, key)
	if err != nil {
		return store.KV{}, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return store.KV{}, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	kv := r.Kvs[0]
	return store.KV{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision}, nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	r, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make([]store.KV, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, store.KV{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision})
	}
	return out, r.Header.Revision, nil
}

func (s *Store) Txn(ctx context.Context, ops ...store.Op) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var conds []clientv3.Cmp
	var thens []clientv3.Op
	for _, op := range ops {
		if op.Expect != store.Any {
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.Expect))
		}
		switch op.Kind {
		case store.OpPut:
			thens = append(thens, clientv3.OpPut(op.Key, string(op.Value)))
		case store.OpDelete:
			thens = append(thens, clientv3.OpDelete(op.Key))
		case store.OpCheck:
		default:
			return 0, fmt.Errorf("etcd txn: unknown op kind %d", op.Kind)
		}
	}
	r, err := s.cli.Txn(ctx).If(conds...).Then(thens...).Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd txn: %w", err)
	}
	if !r.Succeeded {
		return 0, fmt.Errorf("etcd txn on %s: %w", ops[0].Key, store.ErrConflict)
	}
	return r.Header.Revision, nil
}

func (s *Store) Watch(ctx context.Context, prefix string, after int64) <-chan store.WatchResponse {
	out := make(chan store.WatchResponse, 64)
	go func() {
		defer close(out)
		wctx := clientv3.WithRequireLeader(ctx)
		wc := s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(after+1), clientv3.WithProgressNotify())
		for wr := range wc {
			if err := wr.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) || wr.CompactRevision != 0 {
					err = fmt.Errorf("etcd watch %s: %w", prefix, store.ErrCompacted)
				}
				select {
				case out <- store.WatchResponse{Err: err}:
				case <-ctx.Done():
				}
				return
			}
			for _, resp := range splitByRevision(wr) {
				select {
				case out <- resp:
				case <-ctx.Done():
					return
				}
			}
		}
		if ctx.Err() == nil {
			select {
			case out <- store.WatchResponse{Err: fmt.Errorf("etcd watch %s: channel closed", prefix)}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// splitByRevision turns one etcd watch response into one store.WatchResponse per
// revision. etcd may batch several revisions in a response, and while a watcher
// catches up its header revision can run ahead of the events it carries, so a
// response's revision is that of its events; only a progress notification (sent
// once the watcher is in sync) reports the header revision.
func splitByRevision(wr clientv3.WatchResponse) []store.WatchResponse {
	if len(wr.Events) == 0 {
		if wr.IsProgressNotify() {
			return []store.WatchResponse{{Revision: wr.Header.Revision}}
		}
		return nil
	}
	var out []store.WatchResponse
	for _, ev := range wr.Events {
		e := store.Event{KV: store.KV{Key: string(ev.Kv.Key), Value: ev.Kv.Value, Revision: ev.Kv.ModRevision}}
		if ev.Type == clientv3.EventTypeDelete {
			e.Type = store.EventDelete
		}
		if n := len(out); n == 0 || out[n-1].Revision != e.KV.Revision {
			out = append(out, store.WatchResponse{Revision: e.KV.Revision})
		}
		out[len(out)-1].Events = append(out[len(out)-1].Events, e)
	}
	return out
}

// DeletePrefix removes every key under prefix in one revision.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	r, err := s.cli.Delete(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcd delete prefix %s: %w", prefix, err)
	}
	return r.Header.Revision, nil
}

var _ store.Resetter = (*Store)(nil)

// slogCore routes embedded etcd's zap records at warn and above to slog, and
// drops the ones a normal Close produces (listeners and servers reporting that
// they were closed), so a clean shutdown prints nothing while real errors still do.
type slogCore struct {
	log     *slog.Logger
	closing *atomic.Bool
	fields  []zapcore.Field
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, closing: c.closing, fields: append(slices.Clip(c.fields), fs...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	if expectedNote[e.Message] || c.closing.Load() && shutdownNoise(e.Message, enc.Fields) {
		return nil
	}
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	c.log.LogAttrs(context.Background(), level, "etcd: "+e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// expectedNote holds warnings about choices ecsd makes on purpose for its
// single local member (one port for gRPC and HTTP; no auth token signing,
// because etcd auth is not used).
var expectedNote = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// shutdownNoise reports whether a record logged while closing only says that a
// server or listener has stopped.
func shutdownNoise(msg string, fields map[string]any) bool {
	if msg == "setting up serving from embedded etcd failed." {
		return true
	}
	errText, _ := fields["error"].(string)
	for _, s := range []string{"server closed", "closed network connection", "listener closed", "context canceled"} {
		if strings.Contains(errText, s) {
			return true
		}
	}
	return false
}
