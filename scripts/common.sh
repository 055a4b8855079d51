# shellcheck shell=bash
# common.sh: shell helpers shared by scripts/*.sh (sourced, never run).
# Logging to stderr, a free-port finder, the download cache and process checks.

# shellcheck disable=SC2034 # used by the scripts that source this file
CQ_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034
CQ_CACHE="${CHATOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatops}"

cq_log() { printf '%s: %s\n' "${CQ_PROG:-$(basename "$0")}" "$*" >&2; }
cq_die() { cq_log "error: $*"; exit 1; }

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
cq_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# True when the pid in file $1 names a live process.
cq_pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null
}

# True when 127.0.0.1:$1 accepts a TCP connection.
cq_port_open() {
    python3 -c 'import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# Sends SIGTERM to the pid in file $1, waits up to $2 seconds, then SIGKILL.
cq_stop_pidfile() {
    local pidfile="$1" wait_s="${2:-30}" pid i
    if ! cq_pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        cq_log "pid $pid still alive after ${wait_s}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}
