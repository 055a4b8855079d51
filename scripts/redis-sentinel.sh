#!/usr/bin/env bash
# redis-sentinel.sh: a Sentinel-managed Redis for tests and dev: a master and a replica
# (scripts/redis.sh's settings: AOF everysec, 127.0.0.1, free ports) watched by three real
# redis-sentinel processes (quorum 2, down-after 1 s) under master name "cq".
#   redis-sentinel.sh start DIR   start; DIR/sentinels gets "127.0.0.1:P1 127.0.0.1:P2 ...",
#                                 DIR/master_port and DIR/replica_port the data servers' ports
#   redis-sentinel.sh stop DIR    stop the five processes (pid files under DIR)
#   redis-sentinel.sh master DIR  print the master's port as the sentinels see it now
set -euo pipefail
CQ_PROG=redis-sentinel.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NAME=cq
START_TIMEOUT="${CQ_REDIS_START_TIMEOUT:-30}"

usage() {
    echo "usage: redis-sentinel.sh start DIR | stop DIR | master DIR" >&2
    exit 2
}

answers() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" --no-raw ping 2>/dev/null)" == "PONG" ]]
}

wait_ping() {
    local port="$1" log="$2" i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        answers "$port" && return 0
        sleep 0.1
    done
    tail -n 30 "$log" >&2 || true
    cq_die "nothing answers PING on port $port after ${START_TIMEOUT}s"
}

# server DIR PORT [replicaof-port]: one data server (the settings of scripts/redis.sh).
server() {
    local dir="$1" port="$2" of="${3:-}"
    mkdir -p "$dir"
    local extra=()
    [[ -n "$of" ]] && extra=(--replicaof 127.0.0.1 "$of")
    redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --dir "$dir" \
        --appendonly yes --appendfsync everysec --save "" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${extra[@]}" \
        </dev/null >/dev/null 2>&1 || cq_die "redis-server failed to start on port $port"
    wait_ping "$port" "$dir/redis.log"
}

sentinel() {
    local dir="$1" port="$2" master="$3"
    mkdir -p "$dir"
    # Sentinel rewrites its config file (it must be writable and its own).
    cat >"$dir/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel.pid
logfile $dir/sentinel.log
dir $dir
sentinel monitor $NAME 127.0.0.1 $master 2
sentinel down-after-milliseconds $NAME 1000
sentinel failover-timeout $NAME 10000
sentinel parallel-syncs $NAME 1
EOF
    redis-sentinel "$dir/sentinel.conf" </dev/null >/dev/null 2>&1 ||
        cq_die "redis-sentinel failed to start on port $port"
    wait_ping "$port" "$dir/sentinel.log"
}

start() {
    local dir="$1" mp rp i sp list=""
    command -v redis-sentinel >/dev/null || cq_die "redis-sentinel not found (run scripts/deps.sh)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir/master" "$dir/replica" "$dir"/s[123]
    mp="$(cq_free_port)"
    server "$dir/master" "$mp"
    rp="$(cq_free_port)"
    server "$dir/replica" "$rp" "$mp"
    for i in 1 2 3; do
        sp="$(cq_free_port)"
        sentinel "$dir/s$i" "$sp" "$mp"
        list="$list${list:+ }127.0.0.1:$sp"
    done
    echo "$mp" >"$dir/master_port"
    echo "$rp" >"$dir/replica_port"
    echo "$list" >"$dir/sentinels"
    # Ready when the replica is in sync and every sentinel knows the other two and the replica.
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        local ok=1
        [[ "$(redis-cli -p "$rp" info replication | tr -d '\r' | grep -c '^master_link_status:up')" == 1 ]] || ok=0
        for sp in $list; do
            redis-cli -p "${sp#*:}" sentinel master "$NAME" 2>/dev/null | tr -d '\r' |
                awk 'p=="num-other-sentinels"{o=$0} p=="num-slaves"{s=$0} {p=$0}
                     END{exit !(o>=2 && s>=1)}' || ok=0
        done
        if [[ $ok == 1 ]]; then
            cq_log "master 127.0.0.1:$mp, replica :$rp, sentinels $list (name $NAME)"
            echo "$list"
            return 0
        fi
        sleep 0.1
    done
    cq_die "sentinels did not see each other and the replica after ${START_TIMEOUT}s"
}

stop() {
    local dir="$1" f
    for f in "$dir"/s[123]/sentinel.pid "$dir"/master/redis.pid "$dir"/replica/redis.pid; do
        [[ -e "$f" ]] && cq_stop_pidfile "$f" 10
    done
    cq_log "stopped"
}

master() {
    local sp
    sp="$(cut -d' ' -f1 "$1/sentinels")"
    redis-cli -p "${sp#*:}" sentinel get-master-addr-by-name "$NAME" | tail -n 1
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || usage; start "$2" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
master) [[ $# -eq 2 ]] || usage; master "$2" ;;
*) usage ;;
esac
