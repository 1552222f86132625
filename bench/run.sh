#!/usr/bin/env bash
# Runs the benchmark scenarios of docs/benchmarks.md against a fresh Release server each, and rewrites that page.
#   bash bench/run.sh                 all scenarios (about 6 minutes)
#   bash bench/run.sh fanout burst    only these (the page is rewritten from whatever results exist)
# Results (JSON and text) go to artifacts/bench/. Needs: the .NET SDK; Linux (the load tester reads /proc).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${BENCH_OUT:-artifacts/bench}
WS_PORT=${BENCH_WS_PORT:-4101}
API_PORT=${BENCH_API_PORT:-4100}
SECRET=${BENCH_SECRET:-benchmark-secret-0123456789-0123456789}
# The server's runtime settings for every run (chosen by measurement: see docs/benchmarks.md).
SERVER_ENV=(DOTNET_GCgen0MaxBudget=0x100000 DOTNET_GCRegionSize=0x100000 DOTNET_TieredPGO=1 ${BENCH_SERVER_ENV:-})
mkdir -p "$OUT"

echo "building Release..."
dotnet build -c Release src/TradeRoom.Server/TradeRoom.Server.csproj -v q -nologo >/dev/null
dotnet build -c Release src/TradeRoom.LoadTest/TradeRoom.LoadTest.csproj -v q -nologo >/dev/null
SERVER=src/TradeRoom.Server/bin/Release/net10.0/TradeRoom.Server.dll
LOADTEST=src/TradeRoom.LoadTest/bin/Release/net10.0/TradeRoom.LoadTest.dll

server_pid=""
start_server() {
  env "${SERVER_ENV[@]}" ASPNETCORE_ENVIRONMENT=Production JWT_SECRET="$SECRET" WS_PORT="$WS_PORT" API_PORT="$API_PORT" \
    BIND_ADDRESS=127.0.0.1 dotnet "$SERVER" >"$OUT/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then sleep 1; return 0; fi
    sleep 0.2
  done
  echo "the server did not start; see $OUT/server.log" >&2
  exit 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

# run NAME load-tester-args...: one scenario on a freshly started server.
run() {
  local name=$1
  shift
  echo "== $name: $*"
  start_server
  dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" \
    --server-pid "$server_pid" --metrics-url "http://127.0.0.1:$API_PORT/metrics" --json "$OUT/$name.json" --quiet "$@" | tee "$OUT/$name.txt" || true
  echo "$*" >"$OUT/$name.args"
  stop_server
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(density fanout burst growth selfcheck)
for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    density) run density --connections 15000 --rooms 15 --hold 15 ;;
    fanout) run fanout --connections 10000 --rooms 10 --rate 10 --warmup 5 --duration 30 ;;
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
    *) echo "unknown scenario $scenario (density, fanout, burst, growth, selfcheck)" >&2; exit 2 ;;
  esac
done

dotnet "$LOADTEST" report "$OUT" docs/benchmarks.md
echo "wrote docs/benchmarks.md"
