#!/usr/bin/env bash
# The whole-gateway load benchmark: Rampart (plain proxy) beside the direct upstream, nginx and
# haproxy from ../shared/bench, in one run with the same load. Prints a table of requests/s and
# p50/p99 with ratios to the direct upstream, and Rampart's ratio to nginx.
#
#   bash bench/run.sh                       # 3 reps x 10 s, wrk pinned (about 6 minutes)
#   DURATION=3 REPS=1 bash bench/run.sh     # smoke run
#
# Everything stays on 127.0.0.1; every run is bounded by DURATION.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${SHARED_BENCH:-$root/../shared/bench}"
[[ -x "$shared/run-bench.sh" || -f "$shared/run-bench.sh" ]] || { echo "no harness at $shared" >&2; exit 2; }

: "${DURATION:=10}" "${REPS:=3}" "${MATRIX:=wrk:pinned}" "${BENCH_WORKERS:=1}"
export DURATION REPS MATRIX BENCH_WORKERS
export SCENARIOS="${SCENARIOS:-b_* c_* g_*}"
export GATEWAY_PORT="${GATEWAY_PORT:-18090}"
export GATEWAY_CMD="bash $here/gateway.sh"
export OUT_DIR="${OUT_DIR:-$root/target/bench-$(date +%Y%m%d-%H%M%S)}"

echo "building rampart (release)" >&2
(cd "$root" && cargo build --release -p rampart --locked)
export RAMPART_BIN="$root/target/release/rampart"

bash "$shared/run-bench.sh"

tsv="$OUT_DIR/results.tsv"
[[ -f "$tsv" ]] || { echo "no results in $OUT_DIR" >&2; exit 1; }
echo
echo "Rampart against nginx, same run (from $tsv):"
python3 "$here/compare.py" "$tsv"
