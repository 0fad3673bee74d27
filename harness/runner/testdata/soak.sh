#!/usr/bin/env bash
# soak.sh: the scenario library traced again and again, several runs at
# once, while a CPU hog keeps every core busy; `make soak` runs it.
#
# Every scenario of the library passes, so any FAIL is a false one: the
# harness turned load into a red build. The soak passes only with none.
# It also counts checks whose trace was incomplete (reported as a tracing
# problem, never as a failure) and trace events lost.
#
#   harness/runner/testdata/soak.sh [ROUNDS] [AT_ONCE]
#
# SOAK_LIB names what to run instead of the whole library (a scenario
# file or directory). The text and JSON reports of every run that failed
# are kept in a directory the soak names, for its diagnosis and trace.
#
# Needs root and bin/hopcheck; uses stress-ng for the hog when it is
# installed, busy shell loops otherwise. Every loop here is bounded in
# count, and every run in time.
set -euo pipefail
cd "$(dirname "$0")/../../.."

rounds=${1:-20}
at_once=${2:-3}
bin=bin/hopcheck
lib=${SOAK_LIB:-scenarios}
kept=
[ -x "$bin" ] || { echo "soak: $bin missing (make build)" >&2; exit 2; }
out=$(mktemp -d)
hog_pids=()
cleanup() {
	for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$out"
}
trap cleanup EXIT

cores=$(nproc)
hog_secs=$((rounds * 120)) # an upper bound; the hog is killed at the end
if command -v stress-ng >/dev/null; then
	stress-ng --cpu "$cores" --timeout "${hog_secs}s" --quiet &
	hog_pids+=($!)
	hog="stress-ng --cpu $cores"
else
	for _ in $(seq "$cores"); do
		timeout "${hog_secs}s" sh -c 'while :; do :; done' &
		hog_pids+=($!)
	done
	hog="$cores busy loops"
fi
echo "soak: $rounds rounds of $at_once traced runs of $lib at once, with $hog on $cores cores"

start=$(date +%s)
runs=0 false_fails=0 incomplete=0 lost=0 errors=0
for r in $(seq "$rounds"); do
	pids=()
	for i in $(seq "$at_once"); do
		# timeout: a hung run is a failure of its own, not a wait forever.
		timeout 600 "$bin" run --trace always --json "$out/$r-$i.json" "$lib" >"$out/$r-$i.txt" 2>&1 &
		pids+=($!)
	done
	for i in $(seq "$at_once"); do
		code=0
		keep() {
			[ -n "$kept" ] || kept=$(mktemp -d -t hopcheck-soak-failures.XXXXXX)
			cp "$out/$r-$i.txt" "$kept/" && cp "$out/$r-$i.json" "$kept/" 2>/dev/null || true
			echo "  (reports kept: $kept/$r-$i.txt, .json)"
		}
		wait "${pids[$((i - 1))]}" || code=$?
		runs=$((runs + 1))
		json="$out/$r-$i.json"
		if [ "$code" -eq 1 ]; then
			false_fails=$((false_fails + 1))
			echo "soak: round $r run $i: FALSE FAIL; its failed checks:"
			grep -E '^FAIL' "$out/$r-$i.txt" | head -20 | sed 's/^/  /'
			keep
		elif [ "$code" -ne 0 ]; then
			errors=$((errors + 1))
			echo "soak: round $r run $i: exit $code"
			tail -5 "$out/$r-$i.txt" | sed 's/^/  /'
			keep
		fi
		if [ -s "$json" ]; then
			n=$(grep -c '"trace_incomplete": *true' "$json" || true)
			incomplete=$((incomplete + ${n:-0}))
			# The run's total is the last lost_events in the report.
			l=$(grep -o '"lost_events": *[0-9]*' "$json" | tail -1 | grep -o '[0-9]*$' || true)
			lost=$((lost + ${l:-0}))
		fi
	done
	printf 'soak: round %d/%d: %d runs, %d false FAILs, %d other errors, %d incomplete traces, %d events lost, load %s\n' \
		"$r" "$rounds" "$runs" "$false_fails" "$errors" "$incomplete" "$lost" "$(cut -d' ' -f1 /proc/loadavg)"
done
[ -z "$kept" ] || echo "soak: the failed runs' reports are in $kept"
echo "soak: $runs runs in $(($(date +%s) - start)) s: $false_fails false FAILs, $errors other errors, $incomplete checks with incomplete traces, $lost trace events lost"
[ "$false_fails" -eq 0 ] && [ "$errors" -eq 0 ]
