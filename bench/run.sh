#!/usr/bin/env bash
# Runs the benchmark scenarios of docs/benchmarks.md against a fresh Release server each, and rewrites that page.
# density, fanout, steady-50k, burst and growth run on the project and then on the reference server (bench/reference),
# with the same load tester and options, so that the page can set each figure beside the reference's from the same run.
#   bash bench/run.sh                 all scenarios (about 20 minutes)
#   bash bench/run.sh fanout burst    only these (the page is rewritten from whatever results exist)
#   bash bench/run.sh fanout fanout-tls   the fan-out in plaintext and over TLS (wss:// and https://): the cost of TLS
#   bash bench/run.sh density-gcdump fanout-perf   where a connection's memory and a delivery's CPU go (gcdump, perf),
#                                     on the project and the reference (about 4 minutes; needs perf for fanout-perf)
#   bash bench/run.sh durable         the durable-room rows (issue 11): SQLite beside memory and PostgreSQL (8.5 minutes here)
#   bash bench/run.sh cluster         the cluster rows (issue 12): 1 node vs 3 nodes, a cross-node event's cost, failover;
#                                     they only rewrite the page's "Cluster mode" section (about 4 minutes here)
# Every server start gets a fresh store (bench/common.sh): the default SQLite in a new file under artifacts/bench/stores;
# the -memory scenarios keep nothing, the -pg ones use a new database on a throwaway PostgreSQL (tests/postgres.sh).
# Results (JSON and text) go to artifacts/bench/. Needs: the .NET SDK; Linux (the load tester reads /proc); openssl for fanout-tls.
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/common.sh
# The fan-out parameters, one set for fanout and fanout-tls so that the two compare (smaller for a smoke run).
# Each measured window starts after a 20 s warm-up: the server's tiered compilation (JIT) takes the first ~30 s after
# start on this machine (measured: its thread's CPU stops by then), and a long-running server has paid it long before.
read -r -a FANOUT <<<"${BENCH_FANOUT_ARGS:---connections 10000 --rooms 10 --rate 10 --warmup 20 --duration 30}"
read -r -a STEADY_50K <<<"${BENCH_STEADY_ARGS:---connections 10000 --rooms 10 --rate 5 --warmup 20 --duration 30}"
read -r -a BURST <<<"${BENCH_BURST_ARGS:---connections 10000 --rooms 1 --burst 100 --warmup 20}"
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

# The machine is shared: each result records the load average (1, 5, 15 min) at its end, to judge it by.
machine_load() {
  echo "machine load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
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
  machine_load >>"$OUT/$name.txt"
  echo "$*" >"$OUT/$name.args"
  # What the runtime ran with, as the server logged it at start (its runtimeconfig, and BENCH_SERVER_ENV if set).
  { grep -m 1 '^Runtime:' "$OUT/server.log" || echo "Runtime: not logged"; [ -n "${BENCH_SERVER_ENV:-}" ] && echo "BENCH_SERVER_ENV: $BENCH_SERVER_ENV"; } >"$OUT/$name.runtime" || true
  stop_server
}

# run_reference NAME load-tester-args...: the same scenario on a freshly started reference server (bench/reference),
# the same load tester and options; the results are NAME-reference.
run_reference() {
  local name=$1-reference
  shift
  echo "== $name: $*"
  start_reference "$OUT/reference.log"
  dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" \
    --server-pid "$server_pid" --metrics-url "http://127.0.0.1:$API_PORT/metrics" \
    --json "$OUT/$name.json" --quiet "$@" | tee "$OUT/$name.txt" || true
  machine_load >>"$OUT/$name.txt"
  echo "$*" >"$OUT/$name.args"
  stop_server
}
# both NAME load-tester-args...: the project, then the reference, one after the other with the same options.
both() {
  run "$@"
  run_reference "$@"
}

# as_provider PROVIDER command...: the command with the rooms' store on PROVIDER (sqlite, memory, postgresql).
as_provider() {
  local previous=$PROVIDER
  PROVIDER=$1
  shift
  "$@"
  PROVIDER=$previous
}

# persist NAME load-tester-args...: one `--persist` step (issue 11's durable-room measurements) against the running server.
persist() {
  local name=$1
  shift
  local pids=()
  [ -n "$server_pid" ] && pids=(--server-pid "$server_pid")
  [ "$PROVIDER" = postgresql ] && pids+=(--db-pid "$PG_PID")
  echo "== $name ($PROVIDER): $*"
  dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" \
    "${pids[@]}" --provider "$PROVIDER" --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt" || true
  machine_load >>"$OUT/$name.txt"
  echo "$* (provider $PROVIDER)" >"$OUT/$name.args"
}
# publish NAME ROOMS: publish throughput into ROOMS rooms, on a fresh server and store, measured after a 20 s warm-up
# as every other window (the JIT tiers the write path up for about 30 s after the start).
publish() {
  start_server "$OUT/server.log"
  persist "$1" --persist throughput --rooms "$2" --publishers 8 --batch 100 --warmup 20 --duration 10
  stop_server
}
# recovery NAME: two rooms with a full history (1,000 events = rooms.history-size), SIGTERM, start again, resume each
# from seq 0 (the first recovered after the start pays for the journal's own start too, the second does not).
recovery() {
  start_server "$OUT/server.log"
  persist "$1-fill" --persist fill --rooms 2 --events 1000 --state "$OUT/$1.state"
  restart_server
  persist "$1" --persist history --state "$OUT/$1.state"
  stop_server
}
# first_subscribe NAME: 1,000 rooms of 20 events, SIGTERM, start again, one client per room subscribing all at once;
# then once more (SIGTERM, start) subscribing one after another.
first_subscribe() {
  start_server "$OUT/server.log"
  persist "$1-fill" --persist fill --rooms 1000 --events 20 --state "$OUT/$1.state"
  restart_server
  persist "$1" --persist first-subscribe --state "$OUT/$1.state"
  restart_server
  persist "$1-sequential" --persist first-subscribe --sequential --state "$OUT/$1.state"
  stop_server
}
# disk NAME: 100 rooms of 1,000 events each (all within history-size, so all kept), SIGTERM, then measure the store.
disk() {
  start_server "$OUT/server.log"
  persist "$1-fill" --persist fill --rooms 100 --events 1000 --state "$OUT/$1.state"
  stop_server
  if [ "$PROVIDER" = postgresql ]; then
    persist "$1" --persist disk --state "$OUT/$1.state" --pg "$PG_CONNECTION"
  else
    persist "$1" --persist disk --state "$OUT/$1.state" --sqlite "$SQLITE_FILE"
  fi
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

# Where the memory and the CPU go (issue 13: the page's "Where the memory goes" and "Where the CPU goes"). Each runs on
# fresh servers of its own, so that density's and fanout's figures are never taken with a forced GC or a profiler.
# Their files go to $OUT/evidence (NAME.json is the summary the page is written from).
EVIDENCE="$OUT/evidence"
# 10,000 idle subscribed connections, 1,000 per room as in density; held long enough to connect, settle and dump.
read -r -a GCDUMP_DENSITY <<<"${BENCH_GCDUMP_ARGS:---connections 10000 --rooms 10 --hold 45}"
# dotnet_tool NAME: the path of the .NET diagnostics tool NAME (dotnet-gcdump, dotnet-counters) at DIAGNOSTICS_VERSION,
# installed once, pinned, into a cache (TRADEROOM_TOOLS_CACHE, default ~/.cache/traderoom) as clients/js/typecheck.sh
# caches TypeScript; into a folder of its own first, so that an interrupted install is not taken for one.
DIAGNOSTICS_VERSION=10.0.750501
dotnet_tool() {
  local cache="${TRADEROOM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traderoom}/$1-$DIAGNOSTICS_VERSION" partial
  if [ ! -x "$cache/$1" ]; then
    echo "installing $1 $DIAGNOSTICS_VERSION into $cache (once)" >&2
    mkdir -p "$(dirname "$cache")"
    partial=$(mktemp -d "$cache.partial.XXXXXX")
    dotnet tool install --tool-path "$partial" "$1" --version "$DIAGNOSTICS_VERSION" >&2
    rm -rf "$cache"
    mv "$partial" "$cache"
  fi
  echo "$cache/$1"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
# wait_phase FILE PHASE PID: until the load tester (PID) writing its progress to FILE reaches PHASE (at most 120 s).
wait_phase() {
  for _ in $(seq 1 600); do
    grep -q "] $2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
# gcdump_run NAME START: START (start_server or start_reference) a fresh server; a gcdump idle; GCDUMP_DENSITY's
# connections, and a second gcdump while they are held; then the per-type difference per connection, beside the
# resident memory per connection just before the second dump's full GC and just after it.
gcdump_run() {
  local name=$1 start=$2 tool dir="$EVIDENCE" tester rss_idle rss_held rss_after
  tool=$(dotnet_tool dotnet-gcdump)
  mkdir -p "$dir"
  rm -f "$dir/$name-idle.gcdump" "$dir/$name-held.gcdump" "$dir/$name.load.json"
  echo "== $name: ${GCDUMP_DENSITY[*]}"
  $start "$dir/$name.server.log"
  sleep 3 # past the start's own allocations
  "$tool" collect -p "$server_pid" -o "$dir/$name-idle.gcdump" >"$dir/$name.gcdump.log" 2>&1 || true
  rss_idle=$(rss_kib)
  dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" \
    --server-pid "$server_pid" --json "$dir/$name.load.json" "${GCDUMP_DENSITY[@]}" >"$dir/$name.txt" 2>&1 &
  tester=$!
  if wait_phase "$dir/$name.txt" holding "$tester"; then
    sleep 3 # the last subscribes' replies written, the connect burst's garbage still there as density sees it
    rss_held=$(rss_kib)
    "$tool" collect -p "$server_pid" -o "$dir/$name-held.gcdump" >>"$dir/$name.gcdump.log" 2>&1 || true
    rss_after=$(rss_kib)
  fi
  wait "$tester" || true
  stop_server
  if [ -z "${rss_held:-}" ] || [ ! -f "$dir/$name-idle.gcdump" ] || [ ! -f "$dir/$name-held.gcdump" ]; then
    echo "$name: the connections were not held (see $dir/$name.txt)" >&2
    return 0
  fi
  "$tool" report "$dir/$name-idle.gcdump" >"$dir/$name-idle.types"
  "$tool" report "$dir/$name-held.gcdump" >"$dir/$name-held.types"
  dotnet "$LOADTEST" gcdump-diff --idle "$dir/$name-idle.types" --held "$dir/$name-held.types" --load-test "$dir/$name.load.json" \
    --rss-kib "$rss_idle" "$rss_held" "$rss_after" --server "${name%-gcdump}" --command "bash bench/run.sh density-gcdump (${GCDUMP_DENSITY[*]})" \
    --json "$dir/$name.json" | tee "$dir/$name.summary"
}
# perf_run NAME START: START a fresh server with a perf map (managed frames by name), the fan-out scenario against it,
# and `perf record -F 499 -g` for 10 s in the middle of its publishing; then the server's CPU by library, by bucket and
# the top inclusive managed frames, and its GC and JIT counters over the same 10 s.
perf_run() {
  local name=$1 start=$2 dir="$EVIDENCE" tester counters watcher
  counters=$(dotnet_tool dotnet-counters)
  mkdir -p "$dir"
  echo "== $name: ${FANOUT[*]}"
  # JIT'd code in plain memory rather than a double mapping perf cannot read (as bench/profile-publish.sh).
  $start "$dir/$name.server.log" DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
  rm -f "$dir/$name.load.json" "$dir/$name.perf.data" "$dir/$name.perf.script" "$dir/$name.counters.csv"
  dotnet "$LOADTEST" --ws "ws://127.0.0.1:$WS_PORT/ws" --api "http://127.0.0.1:$API_PORT" --secret "$SECRET" \
    --server-pid "$server_pid" --json "$dir/$name.load.json" "${FANOUT[@]}" >"$dir/$name.txt" 2>&1 &
  tester=$!
  if wait_phase "$dir/$name.txt" publishing "$tester"; then
    sleep 5
    # Beside the profile, over the same 10 s: the runtime's GC and JIT counters (perf cannot name the runtime's own
    # native code without its symbols).
    "$counters" collect -p "$server_pid" --counters System.Runtime --format csv -o "$dir/$name.counters.csv" --refresh-interval 1 \
      --duration 00:00:10 >/dev/null 2>&1 &
    watcher=$!
    # Every CPU (-a), the server's samples picked out below: `perf record -p` follows only the threads that exist when
    # it starts, and the thread pool starts new ones (here it missed about 40% of the server's CPU).
    perf record -F 499 -g -a -o "$dir/$name.perf.data" -- sleep 10 >"$dir/$name.perf.log" 2>&1 || true
    wait "$watcher" || true
  fi
  wait "$tester" || true
  # Symbols come from the server's perf map (/tmp/perf-PID.map), read while it still runs.
  if [ -f "$dir/$name.perf.data" ]; then
    perf script -i "$dir/$name.perf.data" --pid "$server_pid" -F comm,tid,ip,sym,dso >"$dir/$name.perf.script" 2>>"$dir/$name.perf.log" || true
  fi
  stop_server
  if [ ! -s "$dir/$name.perf.script" ]; then
    echo "$name: no profile (see $dir/$name.perf.log and $dir/$name.txt)" >&2
    return 0
  fi
  dotnet "$LOADTEST" perf-summary --script "$dir/$name.perf.script" --counters "$dir/$name.counters.csv" \
    --load-test "$dir/$name.load.json" --server "${name%-perf}" \
    --command "bash bench/run.sh fanout-perf (${FANOUT[*]}; perf record -F 499 -g -a -- sleep 10, 5 s into publishing, the server's samples)" \
    --json "$dir/$name.json" | tee "$dir/$name.summary"
  rm -f "$dir/$name.perf.script"
}

# Cluster mode (issue 12): every node a process on this machine, on a fresh PostgreSQL database (bench/common.sh).
# The same total connections and events on 1 node and on 3, small enough for 2 cores shared by 3 nodes and the tester.
read -r -a CLUSTER_FANOUT <<<"${BENCH_CLUSTER_ARGS:---connections 3000 --rooms 10 --rate 10 --warmup 5 --duration 20}"
read -r -a CLUSTER_CROSS <<<"${BENCH_CLUSTER_CROSS_ARGS:---connections 1000 --rooms 10 --rate 10 --warmup 5 --duration 20}"
# cluster_run NAME NODES load-tester-args...: one scenario on NODES fresh nodes; the tester gets every node's ws, api,
# pid and /metrics (connections round-robin over the nodes unless --placement says otherwise).
cluster_run() {
  local name=$1 count=$2
  shift 2
  echo "== $name ($count nodes): $*"
  start_cluster "$count" "$OUT/cluster.log"
  local nodes=()
  for i in $(seq 0 $((count - 1))); do
    nodes+=(--ws "${node_ws[$i]}" --api "${node_api[$i]}" --server-pid "${node_pids[$i]}" --metrics-url "${node_api[$i]}/metrics")
  done
  dotnet "$LOADTEST" "${nodes[@]}" --secret "$SECRET" --json "$OUT/$name.json" --quiet "$@" | tee "$OUT/$name.txt" || true
  machine_load >>"$OUT/$name.txt"
  echo "$* ($count nodes)" >"$OUT/$name.args"
  stop_cluster
}
# cluster_failover NAME: 3 nodes; publishers on the survivors; kill -9 of the node hosting the most rooms.
cluster_failover() {
  echo "== $1 (3 nodes)"
  start_cluster 3 "$OUT/cluster.log"
  local nodes=()
  for i in 0 1 2; do nodes+=(--api "${node_api[$i]}" --server-pid "${node_pids[$i]}"); done
  dotnet "$LOADTEST" --failover "${nodes[@]}" --secret "$SECRET" --rooms 12 --interval-ms 100 --before 5 --json "$OUT/$1.json" | tee "$OUT/$1.txt" || true
  machine_load >>"$OUT/$1.txt"
  echo "--failover --rooms 12 --interval-ms 100 --before 5 (3 nodes)" >"$OUT/$1.args"
  stop_cluster
}
# cluster_idle NAME N: the nodes' own CPU with nothing to do (gossip, heartbeats, timers), to set beside the rows above:
# CPU seconds per node over 20 s, 5 s after the cluster is up, with no client and no publish.
cluster_idle() {
  echo "== $1 ($2 nodes, idle)"
  start_cluster "$2" "$OUT/cluster.log"
  sleep 5
  local ticks=() i
  for pid in "${node_pids[@]}"; do ticks+=("$(awk '{print $14 + $15}' "/proc/$pid/stat")"); done
  sleep 20
  : >"$OUT/$1.txt"
  i=0
  for pid in "${node_pids[@]}"; do
    echo "node $((i + 1)) (pid $pid): $(awk -v t0="${ticks[$i]}" '{printf "%.2f", ($14 + $15 - t0) / 100}' "/proc/$pid/stat") s CPU in 20 s idle" | tee -a "$OUT/$1.txt"
    i=$((i + 1))
  done
  machine_load >>"$OUT/$1.txt"
  echo "$2 nodes, no clients, 20 s" >"$OUT/$1.args"
  stop_cluster
}
CLUSTER=(cluster-1node cluster-3nodes cluster-cross-host cluster-cross-remote cluster-failover)

# `durable`: issue 11's rows, the default store (SQLite) beside memory and PostgreSQL in one invocation (8.5 minutes here).
DURABLE=(fanout fanout-memory fanout-pg burst burst-memory burst-pg publish-1room publish-1room-memory publish-1room-pg
  publish-100rooms publish-100rooms-memory publish-100rooms-pg recovery recovery-pg first-subscribe first-subscribe-pg disk disk-pg)
scenarios=()
for scenario in "$@"; do
  case "$scenario" in
    durable) scenarios+=("${DURABLE[@]}") ;;
    cluster) scenarios+=("${CLUSTER[@]}") ;;
    *) scenarios+=("$scenario") ;;
  esac
done
[ ${#scenarios[@]} -eq 0 ] && scenarios=(density fanout steady-50k fanout-tls burst growth selfcheck)
for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    # Each of these runs on the project, then on the reference server (issue 13): the page reports project / reference.
    density) both density --connections 15000 --rooms 15 --hold 15 ;;
    fanout) both fanout "${FANOUT[@]}" ;;
    # Steady fan-out at 50,000 deliveries/s (1,000 subscribers per room, 5 events/s per room, each room's events evenly
    # spaced and the rooms offset): a rate neither server nor tester saturates the 2 cores with.
    steady-50k) both steady-50k "${STEADY_50K[@]}" ;;
    # The reference has no TLS: this one runs on the project only.
    fanout-tls) run_tls fanout-tls "${FANOUT[@]}" ;;
    burst) both burst "${BURST[@]}" ;;
    # Where the memory and the CPU go (issue 13), on the project and on the reference; not part of the default run.
    density-gcdump) gcdump_run project-gcdump start_server; gcdump_run reference-gcdump start_reference ;;
    fanout-perf) perf_run project-perf start_server; perf_run reference-perf start_reference ;;
    # The same with the rooms' store in memory (nothing kept) and on PostgreSQL, for comparison with the default (SQLite).
    fanout-memory) as_provider memory run fanout-memory "${FANOUT[@]}" ;;
    burst-memory) as_provider memory run burst-memory "${BURST[@]}" ;;
    fanout-pg) as_provider postgresql run fanout-pg "${FANOUT[@]}" ;;
    burst-pg) as_provider postgresql run burst-pg "${BURST[@]}" ;;
    # Durable rooms (issue 11): publish throughput, recovery, first subscribe after a restart, disk per event.
    publish-1room) publish publish-1room 1 ;;
    publish-100rooms) publish publish-100rooms 100 ;;
    publish-1room-memory) as_provider memory publish publish-1room-memory 1 ;;
    publish-100rooms-memory) as_provider memory publish publish-100rooms-memory 100 ;;
    publish-1room-pg) as_provider postgresql publish publish-1room-pg 1 ;;
    publish-100rooms-pg) as_provider postgresql publish publish-100rooms-pg 100 ;;
    recovery) recovery recovery ;;
    recovery-pg) as_provider postgresql recovery recovery-pg ;;
    first-subscribe) first_subscribe first-subscribe ;;
    first-subscribe-pg) as_provider postgresql first_subscribe first-subscribe-pg ;;
    disk) disk disk ;;
    disk-pg) as_provider postgresql disk disk-pg ;;
    cluster-1node) cluster_run cluster-1node 1 "${CLUSTER_FANOUT[@]}" ;;
    cluster-3nodes) cluster_run cluster-3nodes 3 "${CLUSTER_FANOUT[@]}" ;;
    # A cross-node event's cost: 2 nodes, each room's subscribers on its own node, or all on the other one.
    cluster-cross-host) cluster_run cluster-cross-host 2 --placement host "${CLUSTER_CROSS[@]}" ;;
    cluster-cross-remote) cluster_run cluster-cross-remote 2 --placement remote "${CLUSTER_CROSS[@]}" ;;
    cluster-failover) cluster_failover cluster-failover ;;
    cluster-idle) cluster_idle cluster-idle-1node 1; cluster_idle cluster-idle-3nodes 3 ;;
    growth) for n in 1000 5000 10000 15000; do both "growth-$n" --connections "$n" --rooms 10 --rate 10 --warmup 20 --duration 20; done ;;
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
    *) echo "unknown scenario $scenario (density, fanout, steady-50k, fanout-tls, burst, growth, selfcheck, density-gcdump, fanout-perf, fanout-memory, burst-memory," \
         "fanout-pg, burst-pg, cluster-1node, cluster-3nodes, cluster-cross-host, cluster-cross-remote, cluster-failover, publish-1room[-memory|-pg], publish-100rooms[-memory|-pg], recovery[-pg], first-subscribe[-pg], disk[-pg])" >&2
       exit 2 ;;
  esac
done

# Only cluster scenarios: their section of the page (and the analysis after it), not the rest, whose results are elsewhere.
only_cluster=1
for scenario in "${scenarios[@]}"; do [[ "$scenario" == cluster-* ]] || only_cluster=0; done
if [ "$only_cluster" = 1 ]; then
  dotnet "$LOADTEST" report-cluster "$OUT" docs/benchmarks.md
  echo "wrote the cluster section of docs/benchmarks.md"
else
  dotnet "$LOADTEST" report "$OUT" docs/benchmarks.md
  echo "wrote docs/benchmarks.md"
fi
