#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, so that they never depend on a server left running by hand.
#
#   tests/postgres.sh install           Installs Debian's `postgresql` package when initdb/pg_ctl are missing (a no-op
#                                       when present). Called by .ci/run and by the tests' fixture (PostgresServer.cs).
#   tests/postgres.sh start DIR [PID]   Creates an instance with all its files in DIR (data, log, unix socket), listening
#                                       on a free TCP port on 127.0.0.1 only, trust auth, and prints its Npgsql
#                                       connection string on stdout. With PID, the instance is also stopped and DIR
#                                       removed when process PID ends, so a test run that is killed leaves nothing behind.
#   tests/postgres.sh stop DIR          Stops that instance at once (`pg_ctl stop -m immediate`) and removes DIR.
#
# Progress and errors go to stderr; stdout carries only the connection string. initdb and the server refuse to run
# as root, so as root both run as the `postgres` system user (created by the package) and DIR is chowned to it.
set -euo pipefail

me="postgres.sh"

find_bin_dir() {
  local pg_ctl
  if pg_ctl=$(command -v pg_ctl 2>/dev/null) && [ -x "$(dirname "$(readlink -f "$pg_ctl")")/initdb" ]; then
    dirname "$(readlink -f "$pg_ctl")"
    return 0
  fi
  # Debian keeps the server binaries out of PATH, one folder per major version: take the newest.
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
    return 0
  fi
  return 1
}

install() {
  if find_bin_dir >/dev/null; then
    return 0
  fi
  local as_root
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "$me: PostgreSQL (initdb, pg_ctl) is missing and installing it needs root (or sudo): apt-get install postgresql" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "$me: installing Debian's postgresql package (once)" >&2
  "${as_root[@]}" apt-get update -qq >&2
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends postgresql >&2
  if ! find_bin_dir >/dev/null; then
    echo "$me: apt-get installed postgresql, but initdb/pg_ctl are still missing (looked in PATH and /usr/lib/postgresql/*/bin)" >&2
    exit 1
  fi
}

# Runs a PostgreSQL binary as the user that may run it: the `postgres` system user when we are root, else ourselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A port to try: outside the kernel's ephemeral range, where the tests' own free ports (bound to port 0) come from.
random_port() {
  local low high
  read -r low high </proc/sys/net/ipv4/ip_local_port_range
  if [ "$low" -gt 20000 ]; then
    echo $((10000 + RANDOM % (low - 10000)))
  else
    echo $((high + 1 + RANDOM % (65535 - high)))
  fi
}

start() {
  local dir=$1 owner=${2:-}
  local bin
  bin=$(find_bin_dir) || { echo "$me: PostgreSQL is not installed; run: $0 install" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -e "$dir/data" ]; then
    echo "$me: $dir/data already exists; start wants a fresh folder" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "$me: running as root needs the postgres system user (from Debian's postgresql package)" >&2; exit 1; }
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "$me: the postgres user cannot reach $dir (a parent folder shuts it out); use a fresh folder under /tmp" >&2
      exit 1
    fi
  fi
  # The postgres user may not be able to enter our working directory (e.g. /root).
  cd "$dir"

  # --no-sync: initdb's own flush is wasted on a folder that is deleted afterwards; the server keeps fsync on.
  if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    echo "$me: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
  fi

  # Two instances started at once may pick the same port: the loser's server fails to bind, and we try another.
  local attempt port
  for attempt in $(seq 1 20); do
    port=$(random_port)
    if as_pg "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=200" >"$dir/pg_ctl.log" 2>&1; then
      echo "$port" >"$dir/port"
      if [ -n "$owner" ]; then
        watch_owner "$bin" "$dir" "$owner"
      fi
      echo "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
      return 0
    fi
    if ! grep -q "could not bind\|Address already in use\|could not create any TCP/IP sockets" "$dir/server.log" 2>/dev/null; then
      break
    fi
    echo "$me: port $port is taken, trying another" >&2
    : >"$dir/server.log"
  done
  echo "$me: the server did not start (last port tried: $port):" >&2
  cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
  exit 1
}

# A detached watchdog that stops the instance and removes DIR when the owner process ends (however it ends).
# It leads its own process group (setsid), so `stop` can end it together with its `tail`. Its output goes to the instance's log, never to our stdout, which the caller reads to the end.
watch_owner() {
  local bin=$1 dir=$2 owner=$3
  setsid bash -c '
    bin=$1 dir=$2 owner=$3
    cd /
    tail --pid="$owner" -f /dev/null
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$bin/pg_ctl" stop -D "$dir/data" -m immediate
    else "$bin/pg_ctl" stop -D "$dir/data" -m immediate; fi
    rm -rf "$dir"
  ' watchdog "$bin" "$dir" "$owner" </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

stop() {
  local dir=$1
  if [ ! -d "$dir" ]; then
    return 0
  fi
  if [ -f "$dir/watchdog.pid" ]; then
    kill -- "-$(cat "$dir/watchdog.pid")" 2>/dev/null || true
  fi
  cd /
  if [ -f "$dir/data/postmaster.pid" ]; then
    local bin
    bin=$(find_bin_dir) || { echo "$me: PostgreSQL is not installed, cannot stop $dir" >&2; exit 1; }
    as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate >&2 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 2 ] || { echo "usage: $0 start DIR [PID]" >&2; exit 2; }; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR [PID] | stop DIR" >&2; exit 2 ;;
esac
