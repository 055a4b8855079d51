#!/usr/bin/env bash
# redis.sh: a private redis-server (AOF on, 127.0.0.1, free port) for tests, dev and the
# demo; it never touches a system redis on 6379.
#   redis.sh start DIR    start; DIR/port gets the port, data and pid file live in DIR
#   redis.sh stop DIR     SHUTDOWN NOSAVE, else SIGTERM/SIGKILL via the pid file
#   redis.sh resume DIR   start it again on the same port with its AOF (after stop or kill -9)
#   redis.sh status DIR   exit 0 when running and answering PING
set -euo pipefail
CQ_PROG=redis.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

START_TIMEOUT="${CQ_REDIS_START_TIMEOUT:-30}"

usage() {
    echo "usage: redis.sh start DIR | stop DIR | resume DIR | status DIR" >&2
    exit 2
}

ping() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" --no-raw ping 2>/dev/null)" == "PONG" ]]
}

running() {
    cq_pid_alive "$1/redis.pid" && [[ -s "$1/port" ]] && ping "$(cat "$1/port")"
}

start() {
    local dir="$1" port
    command -v redis-server >/dev/null || cq_die "redis-server not found (run scripts/deps.sh)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if running "$dir"; then
        cq_log "already running (pid $(cat "$dir/redis.pid")) on port $(cat "$dir/port")"
        cat "$dir/port"
        return 0
    fi
    cq_stop_pidfile "$dir/redis.pid" 10
    rm -rf "$dir/port" "$dir/redis.log" "$dir/appendonlydir" "$dir"/*.aof "$dir/dump.rdb"
    port="$(cq_free_port)"
    launch "$dir" "$port"
}

# launch DIR PORT: redis-server on PORT with its data in DIR (AOF everysec), until PING answers.
launch() {
    local dir="$1" port="$2" i
    # Empty save "": snapshots off; the AOF is the durability the services rely on.
    redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
        --dir "$dir" --appendonly yes --appendfsync everysec --save "" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        </dev/null >/dev/null 2>&1 || {
        tail -n 30 "$dir/redis.log" >&2 || true
        cq_die "redis-server failed to start on port $port"
    }
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ping "$port"; then
            echo "$port" >"$dir/port"
            echo "$port" >"$dir/last_port"
            cq_log "ready on 127.0.0.1:$port (pid $(cat "$dir/redis.pid" 2>/dev/null))"
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$dir/redis.log" >&2 || true
    cq_stop_pidfile "$dir/redis.pid" 5
    cq_die "redis-server not answering PING on port $port after ${START_TIMEOUT}s"
}

# resume DIR: the Redis of DIR again on its old port, loading its AOF (after stop or a
# kill -9), so clients reconnect to the same address (the fault suite restarts Redis).
resume() {
    local dir
    dir="$(cd "$1" && pwd)"
    [[ -s "$dir/last_port" ]] || cq_die "$dir has no Redis to resume (start it first)"
    if running "$dir"; then
        cat "$dir/port"
        return 0
    fi
    cq_stop_pidfile "$dir/redis.pid" 10
    launch "$dir" "$(cat "$dir/last_port")"
}

stop() {
    local dir="$1" i
    if ! cq_pid_alive "$dir/redis.pid"; then
        rm -f "$dir/redis.pid"
        cq_log "not running"
        return 0
    fi
    if [[ -s "$dir/port" ]]; then
        redis-cli -h 127.0.0.1 -p "$(cat "$dir/port")" shutdown nosave >/dev/null 2>&1 || true
        for ((i = 0; i < 50; i++)); do
            cq_pid_alive "$dir/redis.pid" || break
            sleep 0.1
        done
    fi
    cq_stop_pidfile "$dir/redis.pid" 10
    rm -f "$dir/port"
    cq_log "stopped"
}

status() {
    if running "$1"; then
        echo "running pid $(cat "$1/redis.pid") port $(cat "$1/port")"
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || usage; start "$2" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
resume) [[ $# -eq 2 ]] || usage; resume "$2" ;;
status) [[ $# -eq 2 ]] || usage; status "$2" ;;
*) usage ;;
esac
