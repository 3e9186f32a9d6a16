#!/usr/bin/env bash
# Starts Rampart for the shared loopback harness (../shared/bench), following its GATEWAY_CMD
# contract: listen on 127.0.0.1:$GATEWAY_PORT, forward to $UPSTREAM_URL, foreground, exit on
# SIGTERM. Plain proxying: no stage is configured, events and access log off.
set -euo pipefail
: "${GATEWAY_PORT:?}" "${UPSTREAM_URL:?}"
: "${BENCH_WORKERS:=1}"
: "${RAMPART_BIN:=$(cd "$(dirname "$0")/.." && pwd)/target/release/rampart}"
dir="${GATEWAY_TMP:-$(mktemp -d)}"
cat > "$dir/rampart.yaml" <<YAML
listeners:
  - name: bench
    bind: 127.0.0.1:$GATEWAY_PORT
    limits: { max_connections_per_ip: 10000 }
upstreams:
  origin: { targets: ["$UPSTREAM_URL"], max_idle_per_target: 64 }
apis:
  - { name: bench, upstream: origin }
events: { sqlite: "off", jsonl: "off", access_log: "off" }
YAML
exec "$RAMPART_BIN" --log warn --workers "$BENCH_WORKERS" run -c "$dir/rampart.yaml"
