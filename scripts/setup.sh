#!/usr/bin/env bash
# setup.sh prepares a machine to build, run and test ecsd. It is idempotent and
# quick when everything is already in place, and says what it checks and does.
#
# Expected on the machine image (verified, never downloaded here): Go (at
# /usr/local/go), the aws CLI v1, Terraform 1.11 and the AWS provider in a
# filesystem mirror. Installed from Debian when missing: docker.io,
# busybox-static (the agent runs containers built from busybox),
# docker-registry (the e2e tests pull an image from a registry on loopback) and
# runsc (gVisor: Fargate tasks run under it when dockerd offers it).
# dockerd is started without systemd when it is not answering; a dockerd this
# script starts has runsc registered as the runtime "runsc".
#
# Set ECSD_SETUP_SKIP_DOCKER=1 to leave Docker alone.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: ERROR: %s\n' "$*" >&2
	exit 1
}

# --- Go ----------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || die "Go not found (expected /usr/local/go/bin/go on the machine image; see go.mod for the version)"
say "go:        $(go version)"

# --- aws CLI (end-to-end tests) ------------------------------------------------
# Only the tests need the aws CLI and Terraform: SETUP_FOR=test requires them,
# plain `setup.sh` (make dev) just reports them.
need() {
	if [ "${SETUP_FOR:-}" = test ]; then die "$1"; else say "note: $1 (only the tests need it)"; fi
}
if command -v aws >/dev/null 2>&1; then
	say "aws:       $(aws --version 2>&1 | head -n1)"
else
	need "the aws CLI is not on PATH; it ships with the machine image (aws-cli v1) and the e2e tests need it"
fi

# --- Terraform and its offline AWS provider ------------------------------------
if ! command -v terraform >/dev/null 2>&1; then
	need "terraform is not on PATH; it ships with the machine image (Terraform 1.11) and the e2e tests need it"
else
	# TF_CLI_CONFIG_FILE may name a file that does not exist: ignore it for this check.
	say "terraform: $(TF_CLI_CONFIG_FILE=/dev/null terraform version 2>/dev/null | head -n1)"
	mirror=$(find / -maxdepth 2 -type d -name tf-plugins 2>/dev/null | head -n1 || true)
	if [ -z "$mirror" ] || [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
		need "no Terraform provider mirror with registry.terraform.io/hashicorp/aws (a directory named tf-plugins within two levels of /)"
	else
		versions=$(find "$mirror/registry.terraform.io/hashicorp/aws" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tr '\n' ' ')
		say "provider:  hashicorp/aws ${versions}(mirror $mirror)"
	fi
fi

# --- Docker ---------------------------------------------------------------------
# register_runsc adds gVisor to the daemon configuration of a dockerd this script
# is about to start, as the runtime "runsc". On this kind of kernel runsc works
# only with the host network stack of the container's namespace (--network=host);
# the task's namespace is that of a runc pause container, so isolation of the
# network is kept by the namespace, and of everything else by the sandbox.
register_runsc() {
	local conf=/etc/docker/daemon.json runsc
	runsc=$(command -v runsc || true)
	if [ -z "$runsc" ]; then
		say "gvisor:    runsc not installed; Fargate tasks will use runc"
		return
	fi
	mkdir -p /etc/docker
	if [ -s "$conf" ] && jq -e '.runtimes.runsc' "$conf" >/dev/null 2>&1; then
		say "gvisor:    runtime runsc already in $conf"
		return
	fi
	if [ ! -s "$conf" ]; then
		printf '{\n  "runtimes": {\n    "runsc": {"path": "%s", "runtimeArgs": ["--network=host"]}\n  }\n}\n' "$runsc" >"$conf.tmp"
	elif command -v jq >/dev/null 2>&1; then
		jq -e . "$conf" >/dev/null 2>&1 || die "$conf is not valid JSON; fix it or remove it"
		jq --arg path "$runsc" '.runtimes.runsc = {path: $path, runtimeArgs: ["--network=host"]}' "$conf" >"$conf.tmp"
	else
		say "gvisor:    $conf exists and jq is missing to add runsc to it; Fargate tasks will use runc"
		return
	fi
	mv "$conf.tmp" "$conf"
	say "gvisor:    registered runtime runsc ($runsc --network=host) in $conf"
}

if [ "${ECSD_SETUP_SKIP_DOCKER:-}" = 1 ]; then
	say "docker:    skipped (ECSD_SETUP_SKIP_DOCKER=1)"
else
	missing=()
	for pkg in docker.io busybox-static docker-registry runsc; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "Debian packages missing: ${missing[*]}; run this script as root to install them"
		say "installing Debian packages: ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		say "docker.io, busybox-static, docker-registry and runsc are installed"
	fi
	if ! docker version >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "dockerd is not answering and only root can start it"
		register_runsc
		log=/var/log/ecsd-dockerd.log
		say "starting dockerd (no systemd; log $log)"
		# Without credentials the awslogs driver would reach for a cloud metadata
		# address; the machine must not talk beyond loopback.
		AWS_EC2_METADATA_DISABLED=true nohup dockerd </dev/null >"$log" 2>&1 &
		for _ in $(seq 1 60); do
			docker version >/dev/null 2>&1 && break
			sleep 1
		done
		if ! docker version >/dev/null 2>&1; then
			tail -n 30 "$log" >&2 || true
			die "dockerd did not answer within 60 s (log above, full log in $log)"
		fi
	fi
	say "docker:    $(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"
	# A dockerd started elsewhere is never restarted here: without runsc the
	# Fargate pool runs its tasks with runc (the agent logs which).
	if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
		say "gvisor:    dockerd offers the runtime runsc (Fargate tasks run under gVisor)"
	else
		say "gvisor:    dockerd has no runtime runsc; Fargate tasks will use runc (restart dockerd through this script to add it)"
	fi
fi

# --- Go modules -------------------------------------------------------------------
say "go mod download"
go mod download
say "ready"
