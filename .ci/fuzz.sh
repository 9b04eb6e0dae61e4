#!/usr/bin/env bash
# Runs every fuzz target (each func FuzzX in a _test.go file under services/) for
# FUZZTIME, one `go test -fuzz` each; called by `make fuzz` and `make fuzzsmoke`, whose
# variables it reads: FUZZ (a part of the names to run), FUZZTIME, FUZZMINIMIZETIME,
# FUZZFLAGS, GO. A failing target does not stop the others; the run fails at the end and
# names them. New crashers land in the package's testdata/fuzz/FuzzX/.
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare "context
# deadline exceeded" when -fuzztime runs out while a worker is mid-input, on a busy
# machine more often (golang/go#75804, fixed in Go 1.27). Such a run found nothing: no
# input was written, nothing panicked. It is replayed from its corpus (seeds and
# testdata) to make sure, and reported as that race instead of failing the run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
FUZZ=${FUZZ:-}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-3s}
read -r -a flags <<<"${FUZZFLAGS:-}"

failed=()
raced=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

while IFS=: read -r file name; do
	[[ $name == *"$FUZZ"* ]] || continue
	pkg=./$(dirname "$file")
	echo "fuzz: $name in $pkg for $FUZZTIME"
	if "$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" \
		"${flags[@]}" "$pkg" </dev/null 2>&1 | tee "$log"; then
		continue
	fi
	if grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log" &&
		"$GO" test -count=1 -run "^$name\$" "$pkg" >/dev/null 2>&1; then
		echo "fuzz: $name: the run ended in Go's fuzz-deadline race (golang/go#75804); nothing was found and its corpus passes"
		raced+=("$name")
		continue
	fi
	failed+=("$name")
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' services | sed 's/:func /:/' | sort)

if ((${#raced[@]})); then
	echo "fuzz: ended early in Go's deadline race, found nothing: ${raced[*]}"
fi
if ((${#failed[@]})); then
	echo "fuzz: failed: ${failed[*]} (the crashers are in testdata/fuzz/)" >&2
	exit 1
fi
