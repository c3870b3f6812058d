#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests, CI and the cluster soak. Installs nothing.
#
#   pg-temp.sh start DIR PORT   initdb into DIR (as the `postgres` user: PostgreSQL refuses to run
#                               as root), start it on 127.0.0.1:PORT with fsync off and its socket
#                               in DIR, and print its URL on stdout (the only line on stdout)
#   pg-temp.sh restart DIR [MODE]  restart it with the same options (MODE: smart, fast or
#                               immediate, a crash; default fast), for failover tests
#   pg-temp.sh stop DIR         stop it (fast shutdown) and remove DIR
#
# PG_BIN overrides the server's binaries (default /usr/lib/postgresql/15/bin).
set -euo pipefail

bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
usage() { echo "usage: $0 start DIR PORT | restart DIR [smart|fast|immediate] | stop DIR" >&2; exit 2; }

# Runs a server binary as `postgres` when we are root, as ourselves otherwise.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    [ $# -eq 3 ] || usage
    dir="$2"
    port="$3"
    [ -x "$bin/initdb" ] || { echo "no PostgreSQL server at $bin (apt-get install postgresql)" >&2; exit 1; }
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        echo "$dir exists and is not empty; refusing to initdb into it" >&2
        exit 1
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"
    chmod 0700 "$dir"
    as_postgres "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2
        exit 1
    }
    rm -f "$dir.initdb.log"
    # -w waits until the server accepts connections; its log stays in DIR/server.log.
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c fsync=off -c max_connections=200 -k $dir" start >/dev/null || {
        cat "$dir/server.log" >&2 || true
        exit 1
    }
    echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
restart)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    dir="$2"
    mode="${3:-fast}"
    case "$mode" in smart | fast | immediate) ;; *) usage ;; esac
    # pg_ctl restarts with the options the server was started with (DIR/postmaster.opts).
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -m "$mode" -w -t 30 restart >/dev/null
    ;;
stop)
    [ $# -eq 2 ] || usage
    dir="$2"
    [ -d "$dir" ] || exit 0
    if [ -f "$dir/postmaster.pid" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
