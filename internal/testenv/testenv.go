// Package testenv starts a real ecsd control plane (embedded etcd, cache, API on a
// loopback port) for tests, and gives them the official AWS SDK ECS client.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
)

// Env is a running control plane and a client for it.
type Env struct {
	CP  *controlplane.ControlPlane
	URL string
	ECS *ecs.Client
	Dir string
}

// Options tune Start.
type Options struct {
	// Auth overrides the default dev-mode authentication.
	Auth *auth.Config
	// DataDir reuses a data dir (restart tests); default a fresh temp dir.
	DataDir string
}

// Start runs a control plane for the test and closes it at cleanup.
func Start(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := o.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	ac := auth.Config{Mode: auth.Dev, DefaultAccount: "123456789012", DefaultRegion: "us-east-1", MaxSkew: 15 * time.Minute}
	if o.Auth != nil {
		ac = *o.Auth
	}
	level := slog.LevelWarn
	if os.Getenv("ECSD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{
		Listen: "127.0.0.1:0", DataDir: dir, Auth: ac, Logger: log,
		API: apiserverConfig(),
	})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() { cp.Close() })
	return &Env{CP: cp, URL: cp.URL(), ECS: NewClient(cp.URL(), "AKIDTEST", "secret", "us-east-1"), Dir: dir}
}

// NewClient returns an SDK ECS client for endpoint with static credentials.
func NewClient(endpoint, keyID, secret, region string) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:   http.DefaultClient,
		// Fail fast in tests: a retried 5xx would hide a bug behind seconds of backoff.
		RetryMaxAttempts: 1,
	})
}

// Reset wipes all state through the dev-mode endpoint.
func (e *Env) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(e.URL+"/ecsd/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reset: status %d", resp.StatusCode)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
