#!/usr/bin/env bash
# bench/ingress/profile.sh: deterministic per-request costs of chatops-ingress (no timing):
# the real ingress and a real broker, N distinct signed slash commands (drive.py, every answer
# checked to be the Kafka-confirmed "queued" one) after a warm-up of WARM, and one of
#   callgrind  instructions per request over exactly the N requests (callgrind_control -z / -d
#              around them; all threads, librdkafka's included), the top functions, and the
#              calls per request to malloc/calloc/realloc/free;
#   strace     system calls per request, by name, all threads (strace -f -ttt, the lines
#              inside the measured window);
#   both       the two, one after the other.
#   bench/ingress/profile.sh MODE [N=2000] [CONNS=8]
# Env: CQ_BUILD_DIR (default build), CQ_KAFKA_BROKERS (else a broker is started with
# scripts/kafka.sh), WARM (default 500), OUT (keep the raw files there), CQ_INGRESS_EXE (a
# copy of the binary, to build meanwhile), TOP (functions listed, default 30), INGRESS_ARGS
# (extra flags, e.g. "--kafka-conf linger.ms=2").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=${1:?usage: profile.sh callgrind|strace|both [N] [CONNS]}
n=${2:-2000}
conns=${3:-8}
warm=${WARM:-500}
build=${CQ_BUILD_DIR:-$repo/build}
exe=${CQ_INGRESS_EXE:-$build/ingress/chatops-ingress}
[[ -x $exe ]] || { echo "profile.sh: $exe missing: build first" >&2; exit 1; }
secret=8f742231b10e8888abcd99yyyzzz85a5
tmp=$(mktemp -d /tmp/cq-prof-ingress.XXXXXX)
out=${OUT:-$tmp}
mkdir -p "$out"
own_kafka=
ing=
cleanup() {
    [[ -n $ing ]] && stop
    if [[ -n $own_kafka ]]; then "$repo/scripts/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
BROKERS=${CQ_KAFKA_BROKERS:-}
if [[ -z $BROKERS ]]; then
    "$repo/scripts/kafka.sh" start "$tmp/kafka" >&2
    own_kafka=1
    BROKERS=$(cat "$tmp/kafka/bootstrap")
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # wrapper... : starts the ingress under the wrapper, sets ing/port
    local run_id admin
    run_id=$(date +%s%N)
    port=$(free_port)
    admin=$(free_port)
    printf '%s' "$secret" > "$tmp/slack_secret"
    cat > "$tmp/ingress.yaml" <<YAML
log: {level: warn}
kafka:
  brokers: "$BROKERS"
  produce_timeout_ms: 2500 # the maximum: valgrind is slow
  partitions: 6
  topics: {requests: "prof.ingress.requests.$run_id", pipeline_events: "prof.ingress.pipeline.$run_id"}
ingress: {listen: 127.0.0.1, port: $port, admin_port: $admin, threads: 1}
slack: {enabled: true, signing_secret: "file:$tmp/slack_secret", command: /deploy}
YAML
    # shellcheck disable=SC2086 # INGRESS_ARGS is a word list, e.g. "--kafka-conf linger.ms=2"
    "$@" "$exe" --config "$tmp/ingress.yaml" ${INGRESS_ARGS:-} 2> "$out/ingress.$1.log" &
    ing=$!
    for _ in $(seq 600); do
        kill -0 "$ing" 2>/dev/null || { echo "profile.sh: the ingress exited (see $out)" >&2; exit 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz") == 200 ]] && return 0
        sleep 0.1
    done
    echo "profile.sh: the ingress never became ready" >&2
    exit 1
}
stop() { # SIGTERM to the ingress itself (strace would only pass it on after it detached)
    local target=$ing kids
    kids=$(cat "/proc/$ing/task/$ing/children" 2>/dev/null || true)
    [[ $kids == [0-9]* && $(cat "/proc/$ing/comm") == strace ]] && target=${kids%% *}
    kill -TERM "$target"
    wait "$ing" || true
    ing=
}

# The first messages of a new topic wait for its creation and leadership: under valgrind or
# strace that can pass the produce budget, so the warm-up may see "not queued"; it runs until
# a round is all queued (at most 5 rounds).
warm_up() {
    for _ in 1 2 3 4 5; do
        python3 "$here/drive.py" "$port" "$warm" "$conns" "$secret" >/dev/null && { sleep 1; return 0; }
    done
    echo "profile.sh: the warm-up never had every request queued (see $out)" >&2
    exit 1
}

run_callgrind() {
    start valgrind --tool=callgrind --callgrind-out-file="$out/cg.out.%p"
    warm_up
    callgrind_control -z "$ing" >/dev/null
    python3 "$here/drive.py" "$port" "$n" "$conns" "$secret"
    sleep 0.5 # the last reports' bookkeeping
    callgrind_control -d "$ing" >/dev/null
    local pid=$ing
    stop
    local f="$out/cg.out.$pid.1"
    if [[ ! -f $f ]]; then
        local dumps=("$out"/cg.out."$pid".1*)
        f=${dumps[0]}
    fi
    local total
    total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$f")
    echo "callgrind: $total instructions for $n requests = $((total / n)) per request"
    python3 - "$f" "$n" <<'PY'
import re, sys
f, n = sys.argv[1], int(sys.argv[2])
names, calls, cur = {}, {}, None
for line in open(f, errors='replace'):
    m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?', line)
    if m:
        if m.group(3): names[m.group(2)] = m.group(3).strip()
        if m.group(1) == 'cfn': cur = names.get(m.group(2))
        continue
    m = re.match(r'calls=(\d+) ', line)
    if m and cur:
        calls[cur] = calls.get(cur, 0) + int(m.group(1))
        cur = None
for fn in ('malloc', 'calloc', 'realloc', 'free', 'strdup', 'memset', 'epoll_ctl', 'MHD_suspend_connection'):
    c = sum(v for k, v in calls.items() if k == fn or k.startswith(fn + "'"))
    print('calls/request %-24s %.2f' % (fn, c / n))
PY
    # exclusive cost by function; the callers' rows (loop, main, thread start) are inclusive
    callgrind_annotate --auto=no --threshold=100 --inclusive=no "$f" 2>/dev/null |
        grep -E '^ *[0-9,]+ \(' | grep -v -E 'PROGRAM TOTALS|cq_loop_run|libc_start|below main|start_thread|clone\.S|main\.c:main|ld-linux' |
        head -"${TOP:-30}" | awk -v n="$n" '{c=$1; gsub(",", "", c); printf "%8.0f  %s %s %s\n", c / n, $2, $3, $4}' ||
        true # head closes the pipe early (SIGPIPE upstream)
}

run_strace() {
    start strace -f -ttt -o "$out/strace.txt"
    warm_up
    python3 "$here/drive.py" "$port" "$n" "$conns" "$secret" --mark "$tmp/mark"
    stop
    python3 - "$out/strace.txt" "$tmp/mark" "$n" <<'PY'
import collections, re, sys
t0, t1 = map(float, open(sys.argv[2]).read().split())
n = int(sys.argv[3])
c, main, first = collections.Counter(), collections.Counter(), None
for line in open(sys.argv[1], errors='replace'):
    m = re.match(r'(\d+)\s+(\d+\.\d+) (<\.\.\. )?(\w+)', line)
    if not m or m.group(3): continue  # "<... x resumed>" is the second half of one call
    first = first or m.group(1)  # the process itself: the loop thread (HTTP, reports)
    if t0 <= float(m.group(2)) <= t1:
        c[m.group(4)] += 1
        if m.group(1) == first: main[m.group(4)] += 1
tot, mt = sum(c.values()), sum(main.values())
print('strace: %d system calls for %d requests = %.2f per request (loop thread %.2f, '
      'librdkafka threads %.2f); they depend on batching, so on the load: compare runs on a '
      'like host' % (tot, n, tot / n, mt / n, (tot - mt) / n))
for k, v in c.most_common(12):
    print('  %-16s %.2f  (loop thread %.2f)' % (k, v / n, main[k] / n))
PY
}

case $mode in
callgrind) run_callgrind ;;
strace) run_strace ;;
both) run_callgrind; run_strace ;;
*) echo "profile.sh: unknown mode $mode" >&2; exit 2 ;;
esac
