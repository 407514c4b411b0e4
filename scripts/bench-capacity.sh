#!/usr/bin/env bash
# bench-capacity.sh measures issue 6's two start-up figures, each beside a
# reference taken in the same run (tools/capacitybench says exactly what each
# latency covers):
#
#   scaling  RunTask on an empty node group (managed scaling, local
#            provisioner) → RUNNING, against an `ecsd agent` started as the
#            local provisioner starts one → registered and connected;
#            alternating, a fresh cluster each iteration.
#            Server: `ecsd dev --agent=false --fargate-agent=false` (its default
#            provisioner is local).
#   runc     FARGATE task start beside an EC2 task start, alternating, with
#   runsc    `ecsd dev --fargate-runtime runc` (then runsc): a local agent and
#            a Fargate pool agent in the server process.
#
# Each benchmark gets its own server on free loopback ports with its own temp
# data dir; the script stops every server by PID (a server stops the agents it
# started) and removes what containers the agents left, by instance label.
#
# Usage: scripts/bench-capacity.sh [--benches runc,runsc,scaling] [--iterations 10] [--samples 20]
# Environment:
#   BENCH_OUT  directory for results (*.json, tables, machine.txt, logs);
#              default a temp dir that is removed at the end
# A benchmark, not a test: it fails only when something cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

benches=runc,runsc,scaling
iterations=10
samples=20
while [ $# -gt 0 ]; do
	case $1 in
	--benches) benches=$2; shift 2 ;;
	--iterations) iterations=$2; shift 2 ;;
	--samples) samples=$2; shift 2 ;;
	*) echo "usage: $0 [--benches runc,runsc,scaling] [--iterations N] [--samples N]" >&2; exit 2 ;;
	esac
done

say() { printf 'bench-capacity: %s\n' "$*" >&2; }
die() {
	printf 'bench-capacity: ERROR: %s\n' "$*" >&2
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

docker version >/dev/null 2>&1 || die "dockerd is not answering (scripts/setup.sh starts it)"

work=$(mktemp -d /tmp/bench-capacity.XXXXXX)
out=${BENCH_OUT:-}
spid=
# remove_left_containers removes the containers of every agent this run
# started: each agent's data dir holds its instance ARN (instance.json), and
# capacitybench lists the ARNs it saw.
remove_left_containers() {
	local arn ids
	{
		cat "$work/instances.txt" 2>/dev/null || true
		find "$work" -name instance.json -exec sed -n 's/.*"containerInstanceArn": *"\([^"]*\)".*/\1/p' {} + 2>/dev/null || true
	} | sort -u | while read -r arn; do
		[ -n "$arn" ] || continue
		ids=$(docker ps -aq --filter "label=ecsd.instance=$arn")
		[ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
	done
}
stop_server() {
	[ -n "$spid" ] || return 0
	kill "$spid" 2>/dev/null || true
	# The server stops its node agents (SIGTERM, SIGKILL after 30 s) before exiting.
	for _ in $(seq 1 450); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}
cleanup() {
	stop_server
	remove_left_containers
	if [ -n "$out" ]; then
		mkdir -p "$out"
		cp "$work"/*.log "$work"/*.md "$work"/*.txt "$work"/*.json "$out"/ 2>/dev/null || true
		# The node agents' logs (the local provisioner keeps them in their data dirs).
		if [ -d "$work/scaling/nodes" ]; then
			(cd "$work/scaling/nodes" && find . -name agent.log | while read -r f; do
				mkdir -p "$out/scaling-nodes/$(dirname "$f")" && cp "$f" "$out/scaling-nodes/$f"
			done) || true
		fi
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building bin/ecsd and tools/capacitybench"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$version" -o bin/ecsd ./cmd/ecsd
go build -o "$work/capacitybench" ./tools/capacitybench

# start_server NAME ARGS...: `ecsd dev` on a free port with data in $work/NAME.
start_server() {
	local name=$1
	shift
	port=$(free_port)
	bin/ecsd dev --listen "127.0.0.1:$port" --data-dir "$work/$name" --log-level info "$@" >"$work/$name-server.log" 2>&1 &
	spid=$!
	for _ in $(seq 1 300); do
		kill -0 "$spid" 2>/dev/null || die "ecsd dev exited during startup (log: $work/$name-server.log)"
		curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && break
		sleep 0.2
	done
	[ -s "$work/$name/join-token" ] || die "no join token in $work/$name/join-token"
	say "$name: server pid $spid on :$port"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
{
	echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:    $(nproc)"
	echo "cpu:      $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
	echo "kernel:   $(uname -r)"
	echo "docker:   $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'); runtimes: $(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}')"
	echo "ecsd:     $(bin/ecsd version)"
	echo "command:  scripts/bench-capacity.sh --benches $benches --iterations $iterations --samples $samples"
} >"$work/machine.txt"

run_bench() {
	local name=$1
	echo "load $name: $(loadavg) (1/5/15 min, before)" >>"$work/machine.txt"
	case $name in
	scaling)
		# Node agents do not build the demo image; `ecsd dev` with an agent does
		# (the runc/runsc benchmarks run first by default).
		docker image inspect ecsd/busybox:latest >/dev/null 2>&1 ||
			die "image ecsd/busybox:latest missing: run the runc benchmark first (or ecsd dev once)"
		start_server scaling --agent=false --fargate-agent=false
		"$work/capacitybench" -bench scaling -endpoint "http://127.0.0.1:$port" -ecsd bin/ecsd \
			-join-token "$(cat "$work/scaling/join-token")" -work "$work" -iterations "$iterations" \
			-instances-file "$work/instances.txt" -out "$work/scaling.json" >"$work/scaling.md"
		;;
	runc | runsc)
		start_server "fargate-$name" --fargate-runtime "$name" --provisioner none \
			--agent-tmds-port "$(free_port)" --fargate-agent-tmds-port "$(free_port)"
		"$work/capacitybench" -bench fargate -endpoint "http://127.0.0.1:$port" -runtime "$name" \
			-samples "$samples" -poll 5ms -instances-file "$work/instances.txt" \
			-out "$work/fargate-$name.json" >"$work/fargate-$name.md"
		;;
	*) die "unknown benchmark $name (want scaling, runc, runsc)" ;;
	esac
	echo "load $name: $(loadavg) (after)" >>"$work/machine.txt"
	stop_server
	remove_left_containers
}

IFS=, read -r -a list <<<"$benches"
for b in "${list[@]}"; do
	say "running $b"
	run_bench "$b"
done

echo
cat "$work/machine.txt"
for b in "${list[@]}"; do
	case $b in
	scaling) f=scaling.md; title="RunTask on an empty node group → RUNNING, beside the provisioner's own agent start" ;;
	*) f=fargate-$b.md; title="FARGATE beside EC2, pool runtime $b" ;;
	esac
	echo
	echo "### $title"
	echo
	cat "$work/$f"
done
