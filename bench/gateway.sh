#!/usr/bin/env bash
# Starts Rampart for the shared loopback harness (../shared/bench), following its GATEWAY_CMD
# contract: listen on 127.0.0.1:$GATEWAY_PORT, forward to $UPSTREAM_URL, foreground, exit on
# SIGTERM. Plain proxying by default: no stage is configured, events and access log off.
set -euo pipefail
: "${GATEWAY_PORT:?}" "${UPSTREAM_URL:?}"
: "${BENCH_WORKERS:=1}"
: "${RAMPART_BIN:=$(cd "$(dirname "$0")/.." && pwd)/target/release/rampart}"
dir="${GATEWAY_TMP:-$(mktemp -d)}"
# BENCH_MODE: plain (no stage), ratelimit-memory or ratelimit-redis (one rate-limit rule per
# client address that never refuses, counted in memory or in Redis at $BENCH_REDIS_URL), or
# crs-pl1 (the CRS in $CRS_DIR at paranoia level 1).
: "${BENCH_MODE:=plain}"
limits=""
state=""
case "$BENCH_MODE" in
  plain) ;;
  ratelimit-memory) limits='rate_limits: [{ name: per-ip, key: ip.src, requests: 1000000000, window_secs: 60 }]' ;;
  ratelimit-redis)
    limits='rate_limits: [{ name: per-ip, key: ip.src, requests: 1000000000, window_secs: 60 }]'
    state="state: { store: redis, url: \"${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}\", timeout_ms: 100 }" ;;
  crs-pl1)
    # The OWASP CRS at paranoia level 1 (anomaly threshold 5, blocking), from $CRS_DIR.
    : "${CRS_DIR:?crs-pl1 needs CRS_DIR (a CRS checkout with rules/)}"
    limits="waf: { crs: { rules: [\"$CRS_DIR/rules/*.conf\"], paranoia_level: 1 } }" ;;
  *) echo "unknown BENCH_MODE $BENCH_MODE" >&2; exit 2 ;;
esac
cat > "$dir/rampart.yaml" <<YAML
listeners:
  - name: bench
    bind: 127.0.0.1:$GATEWAY_PORT
    limits: { max_connections_per_ip: 10000 }
upstreams:
  origin: { targets: ["$UPSTREAM_URL"], max_idle_per_target: 64 }
$state
apis:
  - name: bench
    upstream: origin
    $limits
events: { sqlite: "off", jsonl: "off", access_log: "off" }
YAML
exec "$RAMPART_BIN" --log warn --workers "$BENCH_WORKERS" run -c "$dir/rampart.yaml"
