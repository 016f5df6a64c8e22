#!/bin/sh
# pg_harness.sh: start and stop a throwaway PostgreSQL server for tests.
#
#   pg_harness.sh start DIR [OWNER_PID]  initdb DIR/data (if new) and start a server on
#                                        127.0.0.1 at a port the kernel chose, its Unix
#                                        socket in DIR/sock; prints the port. DIR must exist.
#   pg_harness.sh stop DIR               fast shutdown (the data directory is kept)
#   pg_harness.sh kill DIR               immediate shutdown (like a crash; for failover tests)
#   pg_harness.sh psql DIR ARGS...       psql as the superuser "airlock" on that server
#
# The server runs as an unprivileged user: "nobody" when started by root (PostgreSQL
# refuses to run as root), else the caller. The superuser is "airlock", authentication is
# "trust" and only loopback and the private socket directory listen, so nothing outside
# this host can reach it. fsync and synchronous_commit keep their durable defaults.
#
# PG_HARNESS_NETNS and PG_HARNESS_ADDRESS (environment, for "start"): run the server
# inside that network namespace (`ip netns exec`, root only) and listen on that address
# (or comma-separated addresses) instead of 127.0.0.1; pg_hba.conf then also trusts "samenet" (the subnets of the
# namespace's own links), and psql connects through the socket directory.
#
# A watchdog started with the server stops it (immediate) and deletes DIR when OWNER_PID
# (default: the caller's parent) exits without stopping it, so a crashed test never
# leaves a server behind.
set -eu

pg_bin() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    echo "pg_harness: PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-deps" >&2
    exit 3
}

as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

netns=${PG_HARNESS_NETNS:-}
address=${PG_HARNESS_ADDRESS:-127.0.0.1}
in_netns() {
    if [ -n "$netns" ]; then ip netns exec "$netns" "$@"; else "$@"; fi
}
server_in_netns() {
    if [ -n "$netns" ]; then ip netns exec "$netns" runuser -u nobody -- "$@"; else as_server_user "$@"; fi
}

free_port() {
    in_netns python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()' "${address%%,*}"
}

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: pg_harness.sh start|stop|kill|psql DIR [...]" >&2
    exit 2
fi
dir=$(cd "$dir" && pwd)
bin=$(pg_bin)

case "$cmd" in
start)
    owner=${3:-$PPID}
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir/data" "$dir/sock"
        if [ "$(id -u)" -eq 0 ]; then
            chmod 755 "$dir"
            chown nobody "$dir/data" "$dir/sock"
        fi
        chmod 700 "$dir/data"
        # --no-sync: the bootstrap files only; the server itself runs with fsync on.
        if ! as_server_user "$bin/initdb" -D "$dir/data" -U airlock -A trust -E UTF8 --locale=C \
                --no-sync >"$dir/initdb.log" 2>&1; then
            echo "pg_harness: initdb failed:" >&2
            cat "$dir/initdb.log" >&2
            exit 1
        fi
    fi
    if [ "$address" != 127.0.0.1 ] && ! grep -q '^host all all samenet trust' "$dir/data/pg_hba.conf"; then
        echo 'host all all samenet trust' >>"$dir/data/pg_hba.conf"
    fi
    [ "$(id -u)" -eq 0 ] && touch "$dir/server.log" && chown nobody "$dir/server.log"
    # The kernel picks a free port; another process may take it before the server binds,
    # so a failed start is retried on a new port.
    tries=0
    while :; do
        port=$(cat "$dir/port" 2>/dev/null || free_port)
        if server_in_netns "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
                -o "-c listen_addresses=$address -p $port -k $dir/sock -c max_connections=60 -c shared_buffers=16MB -c recovery_init_sync_method=syncfs" \
                start >/dev/null 2>&1; then
            echo "$port" >"$dir/port"
            break
        fi
        tries=$((tries + 1))
        rm -f "$dir/port"
        if [ $tries -ge 5 ]; then
            echo "pg_harness: the server did not start:" >&2
            tail -n 20 "$dir/server.log" >&2
            exit 1
        fi
    done
    # Watchdog: detached, its output away from the caller's pipe.
    (
        trap '' HUP INT
        while kill -0 "$owner" 2>/dev/null && [ -f "$dir/data/postmaster.pid" ]; do sleep 1; done
        if ! kill -0 "$owner" 2>/dev/null && [ -f "$dir/data/postmaster.pid" ]; then
            as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            rm -rf "$dir"
        fi
    ) </dev/null >/dev/null 2>&1 &
    echo "$port"
    ;;
stop|kill)
    mode=fast
    [ "$cmd" = kill ] && mode=immediate
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server_user "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 120 stop >/dev/null
    fi
    ;;
psql)
    shift 2
    port=$(cat "$dir/port")
    exec "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U airlock "$@"
    ;;
*)
    echo "pg_harness: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
