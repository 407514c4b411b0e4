package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
	"github.com/ecsd/ecsd/cache"
	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Client tokens (clientToken): a create retried with the same token and the
// same parameters returns what the first request produced instead of creating
// again; the same token with different parameters is a conflict. ECS scopes a
// token to the cluster and keeps it for 24 hours. The record
// (resource.Idempotency) is written in the same transaction as what the request
// creates, so a request either created its resources and its record, or
// neither; controller/taskgc removes records past their lifetime.

// IdempotencyTTL is how long a client token is remembered.
const IdempotencyTTL = 24 * time.Hour

// validateClientToken applies ECS's rule for a token: up to max characters in
// the ASCII range 33-126.
func validateClientToken(field, tok string, max int) error {
	if len(tok) > max {
		return ecs.Errorf(ecs.CodeInvalidParameter, "%s: must be at most %d characters; got %d.", field, max, len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 33 || tok[i] > 126 {
			return ecs.Errorf(ecs.CodeInvalidParameter, "%s: only ASCII characters 33-126 are allowed (no spaces or control characters).", field)
		}
	}
	return nil
}

// idempotencyKey is where the token of op in cluster is remembered. Tokens may
// contain slashes, so they are escaped.
func idempotencyKey(scope resource.Scope, op, cluster, token string) string {
	return scope.Key(resource.KindIdempotency, op, cluster, url.PathEscape(token))
}

// requestHash fingerprints a request's parameters; the caller clears the token
// itself first. JSON encoding of the wire types is deterministic (fields in
// declaration order, map keys sorted).
func requestHash(in any) string {
	b, err := json.Marshal(in)
	if err != nil {
		panic("apiserver: hash request: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// idempotencyEntry is the state of one token in a snapshot.
type idempotencyEntry struct {
	rec  *resource.Idempotency // nil when absent or expired
	rev  int64                 // revision of the stored record, expired or not (0 if none)
	live bool
}

func lookupIdempotency(snap *cache.Snapshot, key string, now time.Time) idempotencyEntry {
	e, ok := snap.Get(key)
	if !ok {
		return idempotencyEntry{}
	}
	rec, ok := e.Obj.(*resource.Idempotency)
	if !ok {
		return idempotencyEntry{rev: e.Rev}
	}
	if now.Sub(rec.CreatedAt) >= IdempotencyTTL {
		return idempotencyEntry{rev: e.Rev}
	}
	return idempotencyEntry{rec: rec, rev: e.Rev, live: true}
}

// idempotencyOp stores rec at key: a create, or a compare-and-swap over an
// expired record still stored there. Either fails if another request stored a
// record first, and the caller's retry then finds that one.
func idempotencyOp(key string, rec *resource.Idempotency, ent idempotencyEntry) store.Op {
	if ent.rev != 0 {
		return store.Update(key, resource.Encode(rec), ent.rev)
	}
	return store.Create(key, resource.Encode(rec))
}

// idempotentReplay carries the stored answer of an earlier request with the
// same token and parameters out of a plan function.
type idempotentReplay struct{ result []byte }

func (r *idempotentReplay) Error() string { return "idempotent replay" }
