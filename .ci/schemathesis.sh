#!/usr/bin/env bash
# schemathesis (a real OpenAPI client, from PyPI) against `rampart demo`: every request it
# generates from the demo API's OpenAPI document, valid and invalid, must get a conforming
# response or a 4xx from the gateway; never a 5xx, never a crash. Bounded by --max-examples.
# It comes as the demo's trusted tester (X-Forwarded-For: 192.0.2.250, which a custom rule
# exempts from rate limits), so that its requests reach schema validation instead of a 429.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==4.32.5"
fi
cargo build --locked -p rampart
PORT="${DEMO_PORT:-18480}"
ADMIN_PORT="${DEMO_ADMIN_PORT:-18481}"
LOG="$(mktemp)"
"${CARGO_TARGET_DIR:-target}/debug/rampart" demo --port "$PORT" --admin-port "$ADMIN_PORT" --exit-after-secs 600 >"$LOG" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; rm -f "$LOG"' EXIT
SPEC=""
for _ in $(seq 1 100); do
  SPEC="$(grep -o '/[^ ]*rampart-demo-[0-9]*/openapi.json' "$LOG" | head -1 || true)"
  [ -n "$SPEC" ] && break
  sleep 0.2
done
if [ -z "$SPEC" ]; then
  echo "the demo did not start:"; cat "$LOG"; exit 1
fi
"$VENV/bin/schemathesis" run "$SPEC" \
  --url "http://127.0.0.1:$PORT/api" \
  --header "X-Forwarded-For: 192.0.2.250" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance,negative_data_rejection \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --seed "${SCHEMATHESIS_SEED:-1}"
# The demo itself must have survived the run.
kill -0 "$DEMO"
