#!/usr/bin/env bash
# DLP scanner throughput against ripgrep and detect-secrets, on the same 1 MB JSON API
# response, in the same run (machines are noisy: compare ratios, not absolute figures).
#
#   bench/dlp.sh                # REPS=20 (rampart, ripgrep), DS_REPS=3 (detect-secrets)
#
# ripgrep (Debian package `ripgrep`) gets our detectors' patterns in one `-f` file
# (bench/dlp/patterns.txt): a best-in-class regex scanner, without validation. detect-secrets
# (PyPI, installed into target/dlp-bench/venv) runs with its default plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-target/dlp-bench}
REPS=${REPS:-20}
DS_REPS=${DS_REPS:-3}
mkdir -p "$OUT"
command -v rg >/dev/null || { echo "ripgrep is needed: apt-get install ripgrep" >&2; exit 1; }
if [ ! -x "$OUT/venv/bin/detect-secrets" ]; then
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install --quiet detect-secrets==1.5.0
fi
cargo build --quiet --release -p rampart-dlp --example dlp_scan_file
BIN=target/release/examples/dlp_scan_file
DATA="$OUT/response.json"
"$BIN" gen "$DATA"
python3 - "$BIN" "$DATA" "$REPS" "$DS_REPS" "$OUT/venv/bin/detect-secrets" <<'PY'
import os, re, subprocess, sys, time
bin_, data, reps, ds_reps, ds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
size = os.path.getsize(data)
ours = subprocess.run([bin_, "scan", data, str(reps)], capture_output=True, text=True, check=True).stdout.strip()
ours_mbs = float(re.search(r"([\d.]+) MB/s", ours).group(1))
def best(cmd, n):
    t = float("inf")
    out = None
    for _ in range(n):
        s = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        t = min(t, time.perf_counter() - s)
    return t, out
# ripgrep reads 32 copies (one response per line), so that its process start is amortised.
big = data + ".x32"
with open(data, "rb") as f, open(big, "wb") as g:
    one = f.read()
    for _ in range(32):
        g.write(one + b"\n")
rg_t, rg_out = best(["rg", "--count-matches", "--no-filename", "-f", "bench/dlp/patterns.txt", big], max(3, reps // 4))
rg_t /= 32
ds_t, _ = best([ds, "scan", data], ds_reps)
rg_mbs = size / rg_t / 1e6
ds_mbs = size / ds_t / 1e6
print(f"input: {size} bytes of JSON")
print(ours)
print(f"ripgrep {rg_mbs:.1f} MB/s ({int(rg_out.stdout.strip()) // 32} matches per copy, unvalidated; 32 copies per run)")
print(f"detect-secrets {ds_mbs:.2f} MB/s (best of {ds_reps}, process start included)")
print(f"ratio rampart/ripgrep {ours_mbs / rg_mbs:.2f}x, rampart/detect-secrets {ours_mbs / ds_mbs:.0f}x")
PY
