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
trap 'stop_server; drop_store; stop_postgres' EXIT
