#!/usr/bin/env bash
# fuzz.sh runs every fuzz target in the module for a bounded time each
# (FUZZTIME, default 15s). Targets are found anew on every run, so new ones are
# included without editing this script. A failing target's input is saved by
# go test under <pkg>/testdata/fuzz/<Target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-15s}
# A bare number means seconds.
if [[ $FUZZTIME =~ ^[0-9]+$ ]]; then
	FUZZTIME="${FUZZTIME}s"
fi

mapfile -t files < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
if [ "${#files[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

failed=()
count=0
for f in "${files[@]}"; do
	pkg="./$(dirname "${f#./}")"
	while read -r name; do
		[ -n "$name" ] || continue
		count=$((count + 1))
		echo "fuzz: $name in $pkg for $FUZZTIME"
		if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
			failed+=("$pkg $name")
		fi
	done < <(grep -oE '^func Fuzz[A-Za-z0-9_]*\(' "$f" | sed -e 's/^func //' -e 's/($//')
done

if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: $count targets passed"
