#!/usr/bin/env bash
# bench-api.sh measures ecsd's ECS API against moto's server in the same run:
# it builds bin/ecsd and tools/apibench, starts `ecsd dev` (embedded etcd in a
# temp dir, dev auth) and `python3 -m moto.server` on free loopback ports, runs
# apibench against both (targets interleaved per cell), stops both, and prints
# the machine description and the Markdown table.
#
# Usage: scripts/bench-api.sh [apibench flags...]
#   e.g. scripts/bench-api.sh --clients 1,16,64 --duration 5s
# Environment:
#   BENCH_OUT  directory for results (results.json, table.md, machine.txt,
#              server logs); default a temp dir that is removed at the end
#   BENCH_SKIP_MOTO=1  measure ecsd alone
# A benchmark, not a test: it fails only when a server cannot start or set up.
# The machine may be shared: the report says how much CPU other processes used
# during each cell, and warns above 10% (rerun then; see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

say() { printf 'bench-api: %s\n' "$*" >&2; }
die() {
	printf 'bench-api: ERROR: %s\n' "$*" >&2
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_http URL PID NAME: poll until URL answers, the process dies, or 60 s pass.
wait_http() {
	local url=$1 pid=$2 name=$3
	for _ in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$work/$name.log" >&2 || true
			die "$name exited during startup (its log's last lines are above)"
		fi
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	die "$name did not answer $url within 60 s"
}

work=$(mktemp -d /tmp/bench-api.XXXXXX)
out=${BENCH_OUT:-}
pids=()
sampler=
cleanup() {
	local p
	if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$out" ]; then
		mkdir -p "$out"
		cp "$work"/*.log "$out"/ 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building bin/ecsd and tools/apibench"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$version" -o bin/ecsd ./cmd/ecsd
go build -o "$work/apibench" ./tools/apibench

eport=$(free_port)
# The API alone: `ecsd dev` may also run a local agent (and reach for Docker),
# which is not what this measures.
devflags=()
if bin/ecsd dev --help 2>&1 | grep -q -- '--agent'; then devflags+=(--agent=false); fi
bin/ecsd dev --listen "127.0.0.1:$eport" --data-dir "$work/data" --log-level warn "${devflags[@]}" >"$work/ecsd.log" 2>&1 &
epid=$!
pids+=("$epid")
targets=(--endpoint "ecsd=http://127.0.0.1:$eport" --pid "ecsd=$epid")

if [ "${BENCH_SKIP_MOTO:-}" != 1 ]; then
	python3 -c 'import moto' 2>/dev/null || die "moto is not installed (python3 -c 'import moto'); set BENCH_SKIP_MOTO=1 to measure ecsd alone"
	mport=$(free_port)
	python3 -m moto.server -H 127.0.0.1 -p "$mport" >"$work/moto.log" 2>&1 &
	mpid=$!
	pids+=("$mpid")
	targets+=(--endpoint "moto=http://127.0.0.1:$mport" --pid "moto=$mpid")
fi

wait_http "http://127.0.0.1:$eport/healthz" "$epid" ecsd
if [ -n "${mpid:-}" ]; then wait_http "http://127.0.0.1:$mport/" "$mpid" moto; fi
say "ecsd (pid $epid) on :$eport${mpid:+, moto (pid $mpid) on :$mport}"

# Load average every 2 s while the benchmark runs: the machine is shared, and a
# run under foreign load is not comparable.
(while :; do cut -d' ' -f1-3 /proc/loadavg >>"$work/load.txt"; sleep 2; done) &
sampler=$!

{
	echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:    $(nproc)"
	echo "cpu:      $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1) ($(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -n1) guest)"
	echo "kernel:   $(uname -r)"
	echo "go:       $(go version)"
	echo "ecsd:     $(bin/ecsd version) (ecsd dev ${devflags[*]}: embedded etcd, dev auth)"
	if [ -n "${mpid:-}" ]; then echo "moto:     $(python3 -c 'import moto; print(moto.__version__)') ($(python3 --version))"; fi
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
	echo "command:  scripts/bench-api.sh $*"
} >"$work/machine.txt"

"$work/apibench" "${targets[@]}" --json "$work/results.json" "$@" >"$work/table.md"

kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=
maxload=$(awk '{ if ($1 > m) m = $1 } END { print m + 0 }' "$work/load.txt")
echo "load:     max 1-min load average during the run $maxload; after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.txt"
other=$(python3 -c 'import json, sys; print(round(100 * json.load(open(sys.argv[1]))["max_other_cpu_share"]))' "$work/results.json")
echo "other:    other processes used at most ${other}% of the machine during any one cell" >>"$work/machine.txt"
# The benchmark itself keeps both cores busy, so the load average during the
# run says little on its own; the share of CPU used by foreign processes is
# the better sign of a disturbed run.
if [ "$other" -gt 10 ]; then
	say "WARNING: other processes used up to ${other}% of the machine during a cell: consider a rerun"
fi

echo
cat "$work/machine.txt"
echo
cat "$work/table.md"
if [ -n "$out" ]; then
	mkdir -p "$out"
	cp "$work/machine.txt" "$work/table.md" "$work/results.json" "$work/load.txt" "$out"/
	say "results in $out"
fi
