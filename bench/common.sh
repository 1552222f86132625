# Shared by bench/run.sh and bench/room-attack.sh (sourced, from the repository root): the settings every benchmark
# server runs with, the Release build, and starting and stopping a fresh server.
OUT=${BENCH_OUT:-artifacts/bench}
WS_PORT=${BENCH_WS_PORT:-4101}
API_PORT=${BENCH_API_PORT:-4100}
SECRET=${BENCH_SECRET:-benchmark-secret-0123456789-0123456789}
# The server runs with the runtime settings it ships with (its runtimeconfig: TradeRoom.Server.csproj), the same as
# `dotnet run` and a published server; it logs them at start ("Runtime: ..."). BENCH_SERVER_ENV adds variables for an
# experiment (e.g. DOTNET_GCRegionSize=0x400000; README "The two commands" says which variables override the
# runtimeconfig), and the page then says so.
SERVER_ENV=(${BENCH_SERVER_ENV:-})
mkdir -p "$OUT"

echo "building Release..."
dotnet build -c Release src/TradeRoom.Server/TradeRoom.Server.csproj -v q -nologo >/dev/null
dotnet build -c Release src/TradeRoom.LoadTest/TradeRoom.LoadTest.csproj -v q -nologo >/dev/null
dotnet build -c Release bench/reference/TradeRoom.BenchReference.csproj -v q -nologo >/dev/null
SERVER=src/TradeRoom.Server/bin/Release/net10.0/TradeRoom.Server.dll
LOADTEST=src/TradeRoom.LoadTest/bin/Release/net10.0/TradeRoom.LoadTest.dll
# The reference server (bench/reference): plain Kestrel, no actors, the same protocol as far as the load tester uses it.
REFERENCE=bench/reference/bin/Release/net10.0/TradeRoom.BenchReference.dll

# The rooms' store (README "Storage"): PROVIDER is sqlite (the default, what users run), memory or postgresql. Every
# start_server gets a fresh store: a new SQLite file under $OUT/stores (never the repository's data/), or a new database
# on one throwaway PostgreSQL instance (tests/postgres.sh) started on first use and stopped when the script ends.
# restart_server starts again on the same store.
PROVIDER=sqlite
STORE_ENV=()
SQLITE_FILE=""
PG_DIR=""
PG_BASE=""        # the instance's connection string (database postgres)
PG_CONNECTION=""  # the last fresh database's Npgsql connection string
PG_PID=""         # the postmaster, whose process tree is PostgreSQL's CPU
store_count=0
start_postgres() {
  [ -n "$PG_DIR" ] && return 0
  bash tests/postgres.sh install
  PG_DIR=$(mktemp -d /tmp/traderoom-bench-pg.XXXXXX)
  PG_BASE=$(bash tests/postgres.sh start "$PG_DIR" $$)
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
}
stop_postgres() {
  [ -n "$PG_DIR" ] || return 0
  bash tests/postgres.sh stop "$PG_DIR" || true
  PG_DIR=""
}
fresh_store() {
  drop_store
  store_count=$((store_count + 1))
  case "$PROVIDER" in
    sqlite)
      mkdir -p "$OUT/stores"
      SQLITE_FILE="$(cd "$OUT/stores" && pwd)/bench-$$-$store_count.db"
      rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"
      STORE_ENV=(TRADEROOM_PERSISTENCE=sqlite TRADEROOM_DB_FILE="$SQLITE_FILE") ;;
    memory) STORE_ENV=(TRADEROOM_PERSISTENCE=memory) ;;
    postgresql)
      start_postgres
      local db="bench_$store_count"
      psql -h 127.0.0.1 -p "$(cat "$PG_DIR/port")" -U postgres -d postgres -q -c "CREATE DATABASE $db" >/dev/null
      PG_CONNECTION="${PG_BASE/Database=postgres/Database=$db}"
      STORE_ENV=(TRADEROOM_PERSISTENCE=postgresql TRADEROOM_DB="$PG_CONNECTION") ;;
    *) echo "unknown PROVIDER $PROVIDER (sqlite, memory, postgresql)" >&2; exit 2 ;;
  esac
}
# Deletes the last SQLite store (its file can be large; the next fresh store and the end of the script call this);
# PostgreSQL's databases go with the instance.
drop_store() {
  [ "$PROVIDER" = sqlite ] && [ -n "$SQLITE_FILE" ] && rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"
  return 0
}

server_pid=""
server_args=()
# start_server LOG [NAME=VALUE...]: a fresh Production server on WS_PORT/API_PORT with SERVER_ENV, a fresh store of
# PROVIDER, and the extra variables.
start_server() {
  : >"$1"
  fresh_store
  server_args=("$@")
  launch_server "$@"
}
# restart_server: SIGTERM the server, then start it again with the same settings on the same store.
restart_server() {
  stop_server
  launch_server "${server_args[@]}"
}
launch_server() {
  local log=$1
  shift
  env "${SERVER_ENV[@]}" "${STORE_ENV[@]}" "$@" ASPNETCORE_ENVIRONMENT=Production JWT_SECRET="$SECRET" WS_PORT="$WS_PORT" API_PORT="$API_PORT" \
    BIND_ADDRESS=127.0.0.1 dotnet "$SERVER" >>"$log" 2>&1 &
  server_pid=$!
  wait_port "$log"
}
# start_reference LOG [NAME=VALUE...]: the reference server on the same ports and secret, with its own runtimeconfig and
# nothing else but the extra variables (it keeps nothing, so no store). stop_server stops it.
start_reference() {
  local log=$1
  shift
  : >"$log"
  env "$@" JWT_SECRET="$SECRET" WS_PORT="$WS_PORT" API_PORT="$API_PORT" BIND_ADDRESS=127.0.0.1 dotnet "$REFERENCE" >>"$log" 2>&1 &
  server_pid=$!
  wait_port "$log"
}
# wait_port LOG: until the API port answers (at most 20 s), then a second more for the WebSocket port.
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then sleep 1; return 0; fi
    sleep 0.2
  done
  echo "the server did not start; see $1" >&2
  exit 1
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap 'stop_server; drop_store; stop_postgres' EXIT

# Cluster mode (issue 12): N server processes on this machine as one Akka.Cluster over a fresh PostgreSQL database.
# Node i (0-based) listens on WS_PORT+10i / API_PORT+10i, cluster port CLUSTER_BASE_PORT+i; node 0 is the seed.
CLUSTER_BASE_PORT=${BENCH_CLUSTER_PORT:-4153}
node_pids=()
node_ws=()
node_api=()
# start_cluster N LOG: fresh database, node 0 first, then the others; returns once every node sees N members up and is ready.
start_cluster() {
  local count=$1 log=$2
  : >"$log"
  local previous=$PROVIDER
  PROVIDER=postgresql
  fresh_store
  PROVIDER=$previous
  node_pids=() node_ws=() node_api=()
  for i in $(seq 0 $((count - 1))); do
    local ws=$((WS_PORT + 10 * i)) api=$((API_PORT + 10 * i))
    env "${SERVER_ENV[@]}" "${STORE_ENV[@]}" TRADEROOM_CLUSTER=on CLUSTER_HOSTNAME=127.0.0.1 CLUSTER_PORT=$((CLUSTER_BASE_PORT + i)) \
      CLUSTER_SEEDS="akka.tcp://traderoom@127.0.0.1:$CLUSTER_BASE_PORT" ASPNETCORE_ENVIRONMENT=Production JWT_SECRET="$SECRET" \
      WS_PORT=$ws API_PORT=$api BIND_ADDRESS=127.0.0.1 dotnet "$SERVER" >>"$log.$i" 2>&1 &
    node_pids+=($!)
    node_ws+=("ws://127.0.0.1:$ws/ws")
    node_api+=("http://127.0.0.1:$api")
    # The seed forms the cluster alone first, so that the others join it rather than racing it.
    [ "$i" -eq 0 ] && wait_ready "http://127.0.0.1:$api" 1 "$log.0"
  done
  for api in "${node_api[@]}"; do wait_ready "$api" "$count" "$log"; done
  sleep 1
}
# wait_ready API N LOG: until the node answers /api/ready 200 and its /api/health shows N members up (at most 60 s).
wait_ready() {
  for _ in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/api/ready")" = 200 ] &&
       [ "$(curl -s "$1/api/health" | jq '[.cluster.members[] | select(.status == "up")] | length')" = "$2" ]; then
      return 0
    fi
    sleep 0.2
  done
  echo "cluster node $1 not ready with $2 members up; see $3*" >&2
  exit 1
}
# stop_cluster: SIGTERM every node still running (a killed one is only reaped), then wait for them.
stop_cluster() {
  for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  node_pids=()
}
trap 'stop_server; stop_cluster; drop_store; stop_postgres' EXIT
