package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ElectionPrefix is where controller leader elections live: outside the
// resource tree, so the cache never sees them.
const ElectionPrefix = "/ecsd/election/"

// resignTimeout bounds giving up leadership on the way out.
const resignTimeout = 5 * time.Second

// Elector is an etcd leader election (one lease-backed session per term).
// It implements controller/runtime's LeaderElector: only the elected server
// runs the controllers; every server serves the API.
type Elector struct {
	cli  *clientv3.Client
	name string
	id   string
	ttl  int
}

// Elector returns an election named name (e.g. "controllers") in which this
// server campaigns as id (its name or address). A leader that stops renewing
// its lease loses leadership after ttl.
func (s *Store) Elector(name, id string, ttl time.Duration) *Elector {
	secs := int(ttl / time.Second)
	if secs < 1 {
		secs = 10
	}
	return &Elector{cli: s.cli, name: name, id: id, ttl: secs}
}

// Campaign blocks until this server is the leader and returns a context that
// ends when the session's lease is lost or ctx ends; leadership is resigned
// then.
func (e *Elector) Campaign(ctx context.Context) (context.Context, error) {
	if e.cli == nil {
		return nil, errors.New("etcd: elector without a client")
	}
	sess, err := concurrency.NewSession(e.cli, concurrency.WithTTL(e.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("etcd: election session: %w", err)
	}
	el := concurrency.NewElection(sess, ElectionPrefix+e.name)
	if err := el.Campaign(ctx, e.id); err != nil {
		sess.Close()
		return nil, fmt.Errorf("etcd: campaign %s: %w", e.name, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
		case <-lctx.Done():
		}
		cancel()
		rctx, rcancel := context.WithTimeout(context.Background(), resignTimeout)
		el.Resign(rctx)
		rcancel()
		sess.Close()
	}()
	return lctx, nil
}

// Leader returns the id of the current leader of the election ("" if none).
func (e *Elector) Leader(ctx context.Context) (string, error) {
	resp, err := e.cli.Get(ctx, ElectionPrefix+e.name+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
