# Shared by bench/run.sh and bench/room-attack.sh (sourced, from the repository root): the settings every benchmark
# server runs with, the Release build, and starting and stopping a fresh server.
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
# start_server LOG [NAME=VALUE...]: a fresh Production server on WS_PORT/API_PORT with SERVER_ENV and the extra variables.
start_server() {
  local log=$1
  shift
  env "${SERVER_ENV[@]}" "$@" ASPNETCORE_ENVIRONMENT=Production JWT_SECRET="$SECRET" WS_PORT="$WS_PORT" API_PORT="$API_PORT" \
    BIND_ADDRESS=127.0.0.1 dotnet "$SERVER" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then sleep 1; return 0; fi
    sleep 0.2
  done
  echo "the server did not start; see $log" >&2
  exit 1
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT
