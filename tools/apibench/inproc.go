package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/auth"
	"github.com/ecsd/ecsd/controlplane"
)

// startInproc runs an ecsd control plane (embedded etcd in a temp dir, dev
// auth) inside this process. The measured figures then share one process with
// the client, so use it for CPU profiles (--cpuprofile), not for the headline
// numbers: ecsd has no pprof endpoint of its own.
func startInproc() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "apibench-ecsd-")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dir,
		Auth:    auth.Config{Mode: auth.Dev, DefaultAccount: "123456789012", DefaultRegion: "us-east-1", MaxSkew: 15 * time.Minute},
		API:     apiserver.Config{DevMode: true, Version: "apibench"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return cp.URL(), func() { cp.Close(); os.RemoveAll(dir) }, nil
}
