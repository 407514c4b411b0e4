package controlplane

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestJoinTokenKeptInDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	log := slog.New(slog.DiscardHandler)
	tok, err := loadOrCreateJoinToken(dir, log)
	if err != nil || len(tok) < 32 {
		t.Fatalf("token %q, %v", tok, err)
	}
	st, err := os.Stat(filepath.Join(dir, JoinTokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	again, err := loadOrCreateJoinToken(dir, log)
	if err != nil || again != tok {
		t.Fatalf("second start got %q, want %q (%v)", again, tok, err)
	}
	os.WriteFile(filepath.Join(dir, JoinTokenFile), []byte("  operator-set\n"), 0o600)
	if got, _ := loadOrCreateJoinToken(dir, log); got != "operator-set" {
		t.Fatalf("edited token read as %q", got)
	}
}
