package controlplane

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// JoinTokenFile is where a server without a configured join token keeps the
// one it generated, in its data dir (readable by its owner only).
const JoinTokenFile = "join-token"

// loadOrCreateJoinToken returns the join token stored in dataDir, generating
// and storing one on first start, so agents keep working across restarts.
func loadOrCreateJoinToken(dataDir string, log *slog.Logger) (string, error) {
	path := filepath.Join(dataDir, JoinTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			log.Info("agent join token loaded", "file", path)
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("join token: %w", err)
	}
	var raw [24]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	log.Info("agent join token generated; agents join with --join-token $(cat FILE)", "file", path)
	return tok, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
