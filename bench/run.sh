#!/usr/bin/env bash
# Runs the benchmark scenarios of docs/benchmarks.md against a fresh Release server each, and rewrites that page.
#   bash bench/run.sh                 all scenarios (about 6 minutes)
#   bash bench/run.sh fanout burst    only these (the page is rewritten from whatever results exist)
#   bash bench/run.sh fanout fanout-tls   the fan-out in plaintext and over TLS (wss:// and https://): the cost of TLS
# Results (JSON and text) go to artifacts/bench/. Needs: the .NET SDK; Linux (the load tester reads /proc); openssl for fanout-tls.
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/common.sh
# The fan-out parameters, one set for fanout and fanout-tls so that the two compare (smaller for a smoke run).
read -r -a FANOUT <<<"${BENCH_FANOUT_ARGS:---connections 10000 --rooms 10 --rate 10 --warmup 5 --duration 30}"
# Optional: a /metrics bearer token for the server (traderoom.http.metrics-token), which the load tester then sends.
METRICS_TOKEN=${BENCH_METRICS_TOKEN:-}

# Plaintext by default; run_tls switches both ports to TLS with a fresh self-signed certificate.
WS_SCHEME=ws
HTTP_SCHEME=http
TLS_ENV=()
TESTER_TLS=()
TLS_DIR="$OUT/tls"
make_certificate() {
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.crt" 2>/dev/null
}

# run NAME load-tester-args...: one scenario on a freshly started server.
run() {
  local name=$1
  shift
  echo "== $name: $*"
  start_server "$OUT/server.log" "${TLS_ENV[@]}" METRICS_TOKEN="$METRICS_TOKEN"
  local token=()
  [ -n "$METRICS_TOKEN" ] && token=(--metrics-token "$METRICS_TOKEN")
  dotnet "$LOADTEST" --ws "$WS_SCHEME://127.0.0.1:$WS_PORT/ws" --api "$HTTP_SCHEME://127.0.0.1:$API_PORT" --secret "$SECRET" \
    --server-pid "$server_pid" --metrics-url "$HTTP_SCHEME://127.0.0.1:$API_PORT/metrics" "${token[@]}" "${TESTER_TLS[@]}" \
    --json "$OUT/$name.json" --quiet "$@" | tee "$OUT/$name.txt" || true
  echo "$*" >"$OUT/$name.args"
  stop_server
}

# run_tls NAME load-tester-args...: like run, with the server on wss:// and https:// (a self-signed ECDSA P-256 certificate).
run_tls() {
  make_certificate
  WS_SCHEME=wss HTTP_SCHEME=https
  TLS_ENV=(TLS_CERT="$TLS_DIR/server.crt" TLS_KEY="$TLS_DIR/server.key")
  TESTER_TLS=(--ca-cert "$TLS_DIR/server.crt")
  run "$@"
  WS_SCHEME=ws HTTP_SCHEME=http TLS_ENV=() TESTER_TLS=()
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(density fanout fanout-tls burst growth selfcheck)
for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    density) run density --connections 15000 --rooms 15 --hold 15 ;;
    fanout) run fanout "${FANOUT[@]}" ;;
    fanout-tls) run_tls fanout-tls "${FANOUT[@]}" ;;
    burst) run burst --connections 10000 --rooms 1 --burst 100 ;;
    growth) for n in 1000 5000 10000 15000; do run "growth-$n" --connections "$n" --rooms 10 --rate 10 --warmup 5 --duration 20; done ;;
    selfcheck)
      # The load tester against a trivial blasting server, pinned to one core each: can it measure 200k frames/s?
      echo "== selfcheck"
      taskset -c 0 dotnet "$LOADTEST" trivial-server --port "$WS_PORT" --frames 1000 >"$OUT/trivial-server.log" 2>&1 &
      trivial=$!
      sleep 2
      taskset -c 1 dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --connections 1000 --rooms 1 --expect-per-connection 1000 \
        --json "$OUT/selfcheck.json" --quiet | tee "$OUT/selfcheck.txt" || true
      echo "--connections 1000 --expect-per-connection 1000 (trivial server, one core each)" >"$OUT/selfcheck.args"
      kill "$trivial" 2>/dev/null || true
      ;;
    *) echo "unknown scenario $scenario (density, fanout, fanout-tls, burst, growth, selfcheck)" >&2; exit 2 ;;
  esac
done

dotnet "$LOADTEST" report "$OUT" docs/benchmarks.md
echo "wrote docs/benchmarks.md"
