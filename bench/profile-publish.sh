#!/usr/bin/env bash
# Where the server's CPU goes while publishing into durable rooms (bench/analysis.md, "Durable rooms"): a fresh Release
# server and store, `--persist throughput` for 14 s after a 20 s warm-up (the JIT tiers up for about 30 s after the start), and `perf record -g` of the server for 8 s of it.
#   bash bench/profile-publish.sh [ROOMS [PROVIDER [NAME=VALUE...]]]   e.g. 100 sqlite DOTNET_TieredCompilation=0
# Writes artifacts/bench/profile/perf.data and prints the CPU by library and by thread. Needs perf (linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
rooms=${1:-100}
provider=${2:-sqlite}
shift $(( $# < 2 ? $# : 2 ))
# Managed frames by name: a perf map, and JIT'd code in plain memory rather than a double mapping perf cannot read.
export BENCH_SERVER_ENV="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0"
export BENCH_OUT=${BENCH_OUT:-artifacts/bench}/profile
source bench/common.sh
PROVIDER=$provider
start_server "$OUT/server.log" "$@"
dotnet "$LOADTEST" --persist throughput --rooms "$rooms" --publishers 8 --batch 100 --warmup 20 --duration 14 \
  --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" --server-pid "$server_pid" --provider "$PROVIDER" >"$OUT/throughput.txt" 2>&1 &
tester=$!
sleep 23
perf record -F 499 -g -p "$server_pid" -o "$OUT/perf.data" -- sleep 8 2>"$OUT/perf.log" || true
wait "$tester" || true
stop_server
cat "$OUT/throughput.txt"
echo "== server CPU by library"
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -12
echo "== by thread"
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | head -8
echo "== inclusive, by frame (perf report -i $OUT/perf.data --children for the rest)"
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' \
  | grep -E 'sched_yield|fsync|linq2db|LinqToDB|Akka.Persistence|Sqlite|Kestrel|TradeRoom' | head -25 | cut -c1-200
