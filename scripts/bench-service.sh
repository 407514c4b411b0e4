#!/usr/bin/env bash
# bench-service.sh measures a service going from 0 to N tasks (default 20) on
# the real dockerd beside N parallel bare `docker run -d` of the same image and
# command, in the same run and alternating round by round (tools/servicebench
# says exactly what each time covers). It builds bin/ecsd and
# tools/servicebench, starts `ecsd dev --agent=false` (embedded etcd, dev auth)
# and a separate `ecsd agent`, runs servicebench, stops both by PID and removes
# leftover containers by ID.
#
# Usage: scripts/bench-service.sh [servicebench flags...]
#   e.g. scripts/bench-service.sh --rounds 5 --count 20
# Environment:
#   BENCH_OUT  directory for results (results.json, table.md, machine.txt,
#              logs); default a temp dir that is removed at the end
# A benchmark, not a test: it fails only when something cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

say() { printf 'bench-service: %s\n' "$*" >&2; }
die() {
	printf 'bench-service: ERROR: %s\n' "$*" >&2
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

docker version >/dev/null 2>&1 || die "dockerd is not answering (scripts/setup.sh starts it)"

work=$(mktemp -d /tmp/bench-service.XXXXXX)
out=${BENCH_OUT:-}
pids=()
cleanup() {
	local p ids
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# The agent labels its containers with its instance; the baseline's carry servicebench=1.
	if [ -n "${instance:-}" ]; then
		ids=$(docker ps -aq --filter "label=ecsd.instance=$instance")
		[ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
	fi
	ids=$(docker ps -aq --filter label=servicebench=1)
	[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	if [ -n "$out" ]; then
		mkdir -p "$out"
		cp "$work"/*.log "$work"/*.md "$work"/*.txt "$work"/*.json "$out"/ 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building bin/ecsd and tools/servicebench"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$version" -o bin/ecsd ./cmd/ecsd
go build -o "$work/servicebench" ./tools/servicebench

port=$(free_port)
tmds=$(free_port)
bin/ecsd dev --agent=false --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn >"$work/server.log" 2>&1 &
spid=$!
pids+=("$spid")
for _ in $(seq 1 300); do
	kill -0 "$spid" 2>/dev/null || die "ecsd dev exited during startup (log: $work/server.log)"
	curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && break
	sleep 0.2
done
[ -s "$work/data/join-token" ] || die "no join token in $work/data/join-token"
bin/ecsd agent --server "http://127.0.0.1:$port" --join-token "$(cat "$work/data/join-token")" \
	--data-dir "$work/agent" --tmds-port "$tmds" --log-level warn >"$work/agent.log" 2>&1 &
apid=$!
pids+=("$apid")
instance=
for _ in $(seq 1 300); do
	kill -0 "$apid" 2>/dev/null || die "ecsd agent exited during startup (log: $work/agent.log)"
	instance=$(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
		AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
		aws --endpoint-url "http://127.0.0.1:$port" ecs list-container-instances --query 'containerInstanceArns[0]' --output text 2>/dev/null || true)
	case $instance in arn:*) break ;; esac
	instance=
	sleep 0.2
done
[ -n "$instance" ] || die "the agent did not register within 60 s (log: $work/agent.log)"
# Let the agent settle (warm pause pool, first inspections).
sleep 2
say "server pid $spid on :$port, agent pid $apid ($instance)"

{
	echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:    $(nproc)"
	echo "cpu:      $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
	echo "kernel:   $(uname -r)"
	echo "docker:   $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
	echo "ecsd:     $(bin/ecsd version)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
	echo "command:  scripts/bench-service.sh $*"
} >"$work/machine.txt"

rc=0
"$work/servicebench" --endpoint "http://127.0.0.1:$port" --out "$work/results.json" "$@" >"$work/table.md" || rc=$?

echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (after the run)" >>"$work/machine.txt"
echo
cat "$work/machine.txt"
echo
cat "$work/table.md"
[ "$rc" -eq 0 ] || die "servicebench failed (exit $rc); the table holds the rounds before the failure"
