#!/usr/bin/env bash
# bench/e2e/run.sh: end to end, a signed Slack slash command in -> the reply posted to its
# response_url, through the real chatops-ingress, Kafka, chatops-worker (direct mode, fake API
# with a fixed added latency), Redis and chatops-notifier; the Bolt peer (app_e2e.js: verify,
# ack, call the same API, respond, one process) under the same load and the same sink; workers
# and notifiers each capped in their own cgroup (scale-out); exec -> /readyz per service.
# Not a test (takes ~15 minutes); see bench/e2e/README.md.
#   bench/e2e/run.sh            the full benchmark
#   bench/e2e/run.sh --short    a smoke check (~40 s): cold start, chatops and Bolt at
#                               200/s for 3 s; exit 1 if a reply is lost or duplicated
#   bench/e2e/run.sh [--short] -- EXTRA   extra bench_e2e.py options (e.g. --phases e2e)
# Env: CQ_BUILD_DIR (default build; RelWithDebInfo), CQ_KAFKA_BROKERS + CQ_KAFKA_PID_FILE and
# CQ_REDIS_PORT + CQ_REDIS_PID_FILE (use running servers; else both are started here with
# scripts/kafka.sh and scripts/redis.sh and stopped at the end), CQ_BOLT_DIR (default
# ../shared/peers/bolt next to the repo; without it the Bolt part is skipped with a message),
# PREWARM (seconds of load before each system's search, default 45), OUT (summary JSON file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${CQ_BUILD_DIR:-$repo/build}
bolt=${CQ_BOLT_DIR:-${BOLT_DIR:-$repo/../shared/peers/bolt}}
short=
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --short) short=1 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: run.sh [--short] [-- bench_e2e.py options]" >&2; exit 2 ;;
    esac
    shift
done

for exe in ingress/chatops-ingress worker/chatops-worker notifier/chatops-notifier \
    bin/cqt-fake_api bin/cqt-produce_result bin/cq-e2e-load; do
    [[ -x $build/$exe ]] || {
        echo "run.sh: $build/$exe missing: cmake --build $build --target chatops-ingress" \
            "chatops-worker chatops-notifier cqt-fake_api cqt-produce_result cq-e2e-load" >&2
        exit 1
    }
done
if [[ ! -d $bolt ]]; then
    echo "run.sh: the Bolt peer is not at $bolt (set CQ_BOLT_DIR): its part is skipped" >&2
    bolt=
fi

tmp=$(mktemp -d /tmp/cq-bench-e2e.XXXXXX)
own_kafka=''
own_redis=''
cleanup() {
    if [[ -n $own_kafka ]]; then "$repo/scripts/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1 || true; fi
    if [[ -n $own_redis ]]; then "$repo/scripts/redis.sh" stop "$tmp/redis" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

brokers=${CQ_KAFKA_BROKERS:-}
kpid=${CQ_KAFKA_PID_FILE:-}
if [[ -z $brokers ]]; then
    echo "run.sh: starting Kafka (scripts/kafka.sh)" >&2
    "$repo/scripts/kafka.sh" start "$tmp/kafka" >&2
    own_kafka=1
    brokers=$(cat "$tmp/kafka/bootstrap")
    kpid=$tmp/kafka/kafka.pid
fi
rport=${CQ_REDIS_PORT:-}
rpid=${CQ_REDIS_PID_FILE:-}
if [[ -z $rport ]]; then
    echo "run.sh: starting Redis (scripts/redis.sh)" >&2
    "$repo/scripts/redis.sh" start "$tmp/redis" >&2
    own_redis=1
    rport=$(cat "$tmp/redis/port")
    rpid=$tmp/redis/redis.pid
fi

args=(--build "$build" --brokers "$brokers" --redis-port "$rport")
[[ -n $kpid ]] && args+=(--kafka-pid-file "$kpid")
[[ -n $rpid ]] && args+=(--redis-pid-file "$rpid")
[[ -n $bolt ]] && args+=(--bolt-dir "$bolt")
[[ -n ${OUT:-} ]] && args+=(--json "$OUT")
if [[ -n $short ]]; then
    phases=cold,e2e
    [[ -n $bolt ]] && phases+=,bolt
    args+=(--phases "$phases" --rates 200 --seconds 3 --warmup 1 --bisect 0 --cold-n 1
        --prewarm 0 --check)
else
    args+=(--prewarm "${PREWARM:-45}")
    [[ -z $bolt ]] && args+=(--phases "cold,e2e,scale")
fi
echo "run.sh: python3 bench/e2e/bench_e2e.py ${args[*]} ${extra[*]}" >&2
python3 "$here/bench_e2e.py" "${args[@]}" "${extra[@]}"
