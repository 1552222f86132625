#!/usr/bin/env bash
# The room-creation attack of docs/benchmarks.md ("Room-creation attack"), each run on a fresh Release server.
#   bash bench/room-attack.sh attack        one user at its max connections makes up room ids (shipped settings)
#   bash bench/room-attack.sh attack-nobudget   the same with limits.new-rooms-per-minute = 0: only rooms.max-rooms bounds it
#   bash bench/room-attack.sh attack-cap    no budget and rooms.max-rooms = 2000: the cap refuses (normal clients still served)
#   bash bench/room-attack.sh idle-rooms    50,000 rooms started by publishes (the cap), then one more: RSS per room
# Output goes to artifacts/bench/room-attack-*.txt. Needs the .NET SDK and Linux (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-artifacts/bench}
WS_PORT=${BENCH_WS_PORT:-4101}
API_PORT=${BENCH_API_PORT:-4100}
SECRET=${BENCH_SECRET:-benchmark-secret-0123456789-0123456789}
SERVER_ENV=(DOTNET_GCgen0MaxBudget=0x100000 DOTNET_GCRegionSize=0x100000 DOTNET_TieredPGO=1)
mkdir -p "$OUT"
dotnet build -c Release src/TradeRoom.Server/TradeRoom.Server.csproj -v q -nologo >/dev/null
dotnet build -c Release src/TradeRoom.LoadTest/TradeRoom.LoadTest.csproj -v q -nologo >/dev/null
SERVER=src/TradeRoom.Server/bin/Release/net10.0/TradeRoom.Server.dll
LOADTEST=src/TradeRoom.LoadTest/bin/Release/net10.0/TradeRoom.LoadTest.dll

server_pid=""
start_server() { # start_server [TRADEROOM_CONFIG file]
  env "${SERVER_ENV[@]}" ${1:+TRADEROOM_CONFIG=$1} ASPNETCORE_ENVIRONMENT=Production JWT_SECRET="$SECRET" WS_PORT="$WS_PORT" \
    API_PORT="$API_PORT" BIND_ADDRESS=127.0.0.1 dotnet "$SERVER" >"$OUT/room-attack-server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then sleep 2; return 0; fi
    sleep 0.2
  done
  echo "the server did not start; see $OUT/room-attack-server.log" >&2
  exit 1
}
stop_server() { [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
trap stop_server EXIT
loadtest() { dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" --server-pid "$server_pid" "$@"; }

for scenario in "${@:-attack attack-nobudget attack-cap idle-rooms}"; do
  for s in $scenario; do
    echo "== $s"
    case "$s" in
      attack) start_server; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true ;;
      attack-nobudget)
        conf=$(mktemp); echo 'traderoom.limits.new-rooms-per-minute = 0' >"$conf"
        start_server "$conf"; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true; rm -f "$conf" ;;
      attack-cap)
        conf=$(mktemp); printf 'traderoom.limits.new-rooms-per-minute = 0\ntraderoom.rooms.max-rooms = 2000\n' >"$conf"
        start_server "$conf"; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true; rm -f "$conf" ;;
      idle-rooms) start_server; loadtest --attack idle-rooms --rooms 50000 | tee "$OUT/room-attack-$s.txt" || true ;;
      *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
    stop_server
  done
done
