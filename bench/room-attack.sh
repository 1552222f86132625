#!/usr/bin/env bash
# The room-creation attack of docs/benchmarks.md ("Room-creation attack"), each run on a fresh Release server.
#   bash bench/room-attack.sh attack        one user at its max connections makes up room ids (shipped settings)
#   bash bench/room-attack.sh attack-nobudget   the same with limits.new-rooms-per-minute = 0: only rooms.max-rooms bounds it
#   bash bench/room-attack.sh attack-cap    no budget and rooms.max-rooms = 2000: the cap refuses (normal clients still served)
#   bash bench/room-attack.sh idle-rooms    50,000 rooms started by publishes (the cap), then one more: RSS per room
# Output goes to artifacts/bench/room-attack-*.txt. Needs the .NET SDK and Linux (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
loadtest() { dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" --server-pid "$server_pid" "$@"; }

for scenario in "${@:-attack attack-nobudget attack-cap idle-rooms}"; do
  for s in $scenario; do
    echo "== $s"
    case "$s" in
      attack) start_server "$OUT/room-attack-server.log"; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true ;;
      attack-nobudget)
        conf=$(mktemp); echo 'traderoom.limits.new-rooms-per-minute = 0' >"$conf"
        start_server "$OUT/room-attack-server.log" TRADEROOM_CONFIG="$conf"; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true; rm -f "$conf" ;;
      attack-cap)
        conf=$(mktemp); printf 'traderoom.limits.new-rooms-per-minute = 0\ntraderoom.rooms.max-rooms = 2000\n' >"$conf"
        start_server "$OUT/room-attack-server.log" TRADEROOM_CONFIG="$conf"; loadtest --attack rooms --duration 60 | tee "$OUT/room-attack-$s.txt" || true; rm -f "$conf" ;;
      idle-rooms) start_server "$OUT/room-attack-server.log"; loadtest --attack idle-rooms --rooms 50000 | tee "$OUT/room-attack-$s.txt" || true ;;
      *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
    stop_server
  done
done
