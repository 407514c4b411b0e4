package apiserver

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/ecsd/ecsd/resource"
	"github.com/ecsd/ecsd/store"
)

// Operator endpoints beside the API: health, version and (dev mode) reset.

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.cache.Ready():
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "revision": s.cache.Rev()})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
	}
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.cfg.Version})
}

// serveReset wipes every ecsd key (dev mode only): test suites reset between cases.
func (s *Server) serveReset(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.st.(store.Resetter)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]any{"error": "this store cannot reset"})
		return
	}
	rev, err := rs.DeletePrefix(r.Context(), resource.Root)
	if err == nil {
		// Wait on a write of our own inside the cached prefix: the delete's
		// revision may belong to a key outside it (leader election) when there
		// was nothing to delete, and the cache would never see that revision.
		rev, err = s.st.Txn(r.Context(), store.Put(resource.Root+"_reset", []byte(s.cfg.Now().UTC().Format(time.RFC3339Nano))))
	}
	if err == nil {
		ctx, cancel := s.waitCtx(r.Context())
		err = s.cache.WaitFor(ctx, rev)
		cancel()
	}
	if err != nil {
		s.log.Error("reset failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	s.log.Warn("all state wiped by /ecsd/reset", "revision", rev)
	writeJSON(w, http.StatusOK, map[string]any{"status": "reset", "revision": rev})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
