# ecsd: the two commands a fresh machine needs are `make dev` (run) and
# `make test` (test). The other targets are their parts.

SHELL   := /bin/bash
GO      ?= go
BIN     := bin/ecsd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# What go generate writes (checked in, must reproduce byte for byte).
GENERATED := ':(glob)api/**/zz_*.go'
# Extra flags for `ecsd dev`, e.g. make dev DEV_FLAGS='--listen 127.0.0.1:4566'.
DEV_FLAGS ?=

export PATH := $(PATH):/usr/local/go/bin

.PHONY: dev test build generate fuzz setup vet clean

## dev: prepare the machine, build bin/ecsd and run `ecsd dev` (Ctrl-C stops it)
dev: setup build
	$(BIN) dev $(DEV_FLAGS)

## test: prepare the machine, run every test (unit, integration, e2e), then the fuzzers
test:
	SETUP_FOR=test scripts/setup.sh
	$(GO) test -count=1 -timeout 30m ./...
	scripts/fuzz.sh

## build: bin/ecsd with the version stamped in
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ecsd

## generate: regenerate the wire types; fails if the checked-in code differs
generate:
	$(GO) generate ./api/...
	@git diff --exit-code --stat -- $(GENERATED) || { echo "make generate: generated code differs from what is checked in (files above)" >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- $(GENERATED)); \
	if [ -n "$$untracked" ]; then echo "make generate: untracked generated files: $$untracked" >&2; exit 1; fi

## fuzz: every fuzz target for FUZZTIME (default 15s) each
fuzz:
	scripts/fuzz.sh

setup:
	scripts/setup.sh

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
