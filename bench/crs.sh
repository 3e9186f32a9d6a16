#!/usr/bin/env bash
# Rampart with the OWASP CRS at paranoia level 1 against nginx + ModSecurity v3 + CRS PL1
# (Debian's packages), both loading the same CRS 4 rules (../shared/corpora/crs), in one run
# of the shared loopback harness (../shared/bench) with the same load: a benign GET and a
# benign 1 KB JSON POST. Prints requests/s and proxy CPU per request, and the CPU the CRS adds
# to each (Rampart with the CRS minus Rampart alone, measured in a second run).
#
#   bash bench/crs.sh                       # 3 reps x 10 s (about 8 minutes)
#   DURATION=3 REPS=1 bash bench/crs.sh     # smoke run
#
# The harness's ModSecurity loads Debian's CRS 3.3; a copy of the harness is pointed at the
# CRS 4 checkout instead (its crs-setup.conf.example, no exclusion files). Loopback only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${SHARED_BENCH:-$root/../shared/bench}"
crs="$(cd "${CRS_DIR:-$root/../shared/corpora/crs}" && pwd)"
[[ -f "$shared/run-bench.sh" ]] || { echo "no harness at $shared" >&2; exit 2; }
[[ -f "$crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf" ]] || { echo "no CRS at $crs" >&2; exit 2; }

: "${DURATION:=10}" "${REPS:=3}" "${MATRIX:=wrk:pinned}" "${BENCH_WORKERS:=1}"
export DURATION REPS MATRIX BENCH_WORKERS
export GATEWAY_PORT="${GATEWAY_PORT:-18090}"
export GATEWAY_CMD="bash $here/gateway.sh"
export CRS_DIR="$crs"
stamp="$(date +%Y%m%d-%H%M%S)"
out="${OUT_DIR:-$root/target/bench-crs-$stamp}"

# A copy of the harness whose ModSecurity reads the CRS 4 rules.
harness="$(mktemp -d)/bench"
cp -r "$shared" "$harness"
python3 - "$harness/lib.sh" "$crs" <<'PY'
import sys
p, crs = sys.argv[1], sys.argv[2]
s = open(p).read()
anchor = '  MODSEC_RECOMMENDED="$(pkg_file libnginx-mod-http-modsecurity'
assert s.count(anchor) == 1, "the harness changed: update bench/crs.sh"
s = s.replace(anchor, f'  CRS_RULES_DIR="{crs}/rules"; CRS_SETUP_FILE="{crs}/crs-setup.conf.example"\n'
              '  CRS_EXCL_BEFORE=""; CRS_EXCL_AFTER=""\n' + anchor)
open(p, "w").write(s)
PY

echo "building rampart (release)" >&2
(cd "$root" && cargo build --release -p rampart --locked)
export RAMPART_BIN="$root/target/release/rampart"

echo "run 1: ModSecurity + CRS 4 PL1 beside Rampart + CRS 4 PL1" >&2
OUT_DIR="$out/crs" BENCH_MODE=crs-pl1 SCENARIOS='b_* d_* e_* g_*' bash "$harness/run-bench.sh"
echo "run 2: Rampart alone (what the CRS adds is the difference)" >&2
OUT_DIR="$out/plain" BENCH_MODE=plain SCENARIOS='g_*' bash "$harness/run-bench.sh"

python3 - "$out/crs/results.tsv" "$out/plain/results.tsv" <<'PY'
import csv, statistics, sys
def load(p): return list(csv.DictReader(open(p), delimiter="\t"))
crs, plain = load(sys.argv[1]), load(sys.argv[2])
def med(rows, scn, col):
    v = [float(r[col]) for r in rows if r.get("scenario") == scn and r.get(col) not in (None, "", "NA", "-")]
    return statistics.median(v) if v else float("nan")
print("\n| | req/s | proxy CPU per request | non-2xx |")
print("|---|---|---|---|")
for m in ("get", "post"):
    modsec = "d_modsec_pl1_get" if m == "get" else "e_modsec_pl1_post"
    for label, rows, scn in (("nginx (no WAF)", crs, f"b_nginx_{m}"), ("nginx + ModSecurity + CRS 4 PL1", crs, modsec),
                             ("Rampart + CRS 4 PL1", crs, f"g_gateway_{m}"), ("Rampart alone", plain, f"g_gateway_{m}")):
        print(f"| {m.upper()} {label} | {med(rows, scn, 'rps'):,.0f} | {med(rows, scn, 'front_us_req'):.1f} µs | {med(rows, scn, 'non2xx'):.0f} |")
for m in ("get", "post"):
    modsec = "d_modsec_pl1_get" if m == "get" else "e_modsec_pl1_post"
    r_crs, r_plain = med(crs, f"g_gateway_{m}", "front_us_req"), med(plain, f"g_gateway_{m}", "front_us_req")
    n_plain, n_ms = med(crs, f"b_nginx_{m}", "front_us_req"), med(crs, modsec, "front_us_req")
    print(f"\n{m.upper()}: the CRS adds {r_crs - r_plain:.0f} µs of CPU per request to Rampart, "
          f"{n_ms - n_plain:.0f} µs to nginx (ModSecurity); throughput Rampart+CRS / nginx+ModSecurity = "
          f"{med(crs, f'g_gateway_{m}', 'rps') / med(crs, modsec, 'rps'):.1f}x")
PY
echo "results: $out" >&2
