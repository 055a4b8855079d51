#!/usr/bin/env bash
# run.sh: the README's run command. Installs what is missing, builds, starts Kafka (KRaft from
# the cached Maven jars) and Redis under .stack/, creates the topics, then the ingress, two
# workers and the notifier with examples/ops.yaml (plus the demo GitLab and chat sink when
# present), prints where everything listens, and stops everything cleanly on Ctrl-C.
#   scripts/run.sh [--config FILE] [--detach]   --detach: start, print, and return (stop with
#                                               scripts/run.sh --stop)
set -euo pipefail
CQ_PROG=run.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

config="$CQ_REPO_ROOT/examples/ops.yaml"
detach=0
stack="${CQ_RUN_DIR:-$CQ_REPO_ROOT/.stack}"
build="$CQ_REPO_ROOT/build"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --config) config="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --detach) detach=1; shift ;;
    --stop)
        for f in "$stack"/pids/*.pid; do [[ -e "$f" ]] && cq_stop_pidfile "$f" 15; done
        "$CQ_REPO_ROOT/scripts/redis.sh" stop "$stack/redis" || true
        "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$stack/kafka" || true
        exit 0 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) cq_die "unknown argument $1 (try --help)" ;;
    esac
done

"$CQ_REPO_ROOT/scripts/deps.sh"
"$CQ_REPO_ROOT/scripts/kafka.sh" fetch
cq_log "building into $build"
cmake -S "$CQ_REPO_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
    --target chatops-ingress chatops-worker chatops-notifier chatopsctl >/dev/null

mkdir -p "$stack/pids" "$stack/logs"
stop_all() {
    trap - INT TERM EXIT
    cq_log "stopping services"
    for f in "$stack"/pids/*.pid; do [[ -e "$f" ]] && cq_stop_pidfile "$f" 15; done
    "$CQ_REPO_ROOT/scripts/redis.sh" stop "$stack/redis" >/dev/null 2>&1 || true
    "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$stack/kafka" >/dev/null 2>&1 || true
    cq_log "stopped"
}
[[ $detach -eq 1 ]] || trap stop_all INT TERM EXIT

cq_log "starting Kafka (KRaft, one node) — this takes a few seconds"
"$CQ_REPO_ROOT/scripts/kafka.sh" start "$stack/kafka" >/dev/null
cq_log "starting Redis"
"$CQ_REPO_ROOT/scripts/redis.sh" start "$stack/redis" >/dev/null

# Demo secrets: the examples reference them as ${ENV}; real deployments set their own.
: "${SLACK_SIGNING_SECRET:=demo-slack-signing-secret}" "${SLACK_BOT_TOKEN:=xoxb-demo}"
: "${FEISHU_APP_SECRET:=demo-feishu-app-secret}"
: "${FEISHU_VERIFICATION_TOKEN:=demo-feishu-verification-token}"
: "${FEISHU_ENCRYPT_KEY:=demo-feishu-encrypt-key}" "${GITLAB_API_TOKEN:=demo-gitlab-api-token}"
: "${GITLAB_WEBHOOK_TOKEN:=demo-gitlab-webhook-token}" "${LB_TRIGGER_TOKEN:=demo-lb-trigger-token}"
: "${DEPLOY_TRIGGER_TOKEN:=demo-deploy-trigger-token}"
export SLACK_SIGNING_SECRET SLACK_BOT_TOKEN FEISHU_APP_SECRET FEISHU_VERIFICATION_TOKEN \
    FEISHU_ENCRYPT_KEY GITLAB_API_TOKEN GITLAB_WEBHOOK_TOKEN LB_TRIGGER_TOKEN DEPLOY_TRIGGER_TOKEN
CQ_KAFKA_BROKERS="$(cat "$stack/kafka/bootstrap")"
CQ_REDIS_HOST=127.0.0.1
CQ_REDIS_PORT="$(cat "$stack/redis/port")"
export CQ_KAFKA_BROKERS CQ_REDIS_HOST CQ_REDIS_PORT CHATOPS_CONFIG="$config"

cq_log "creating topics"
"$build/tools/chatopsctl" --config "$config" topics ensure >/dev/null

# spawn NAME PORTVAR PORT CMD...: start a service in the background with its own log.
spawn() {
    local name="$1"
    shift
    "$@" >"$stack/logs/$name.log" 2>&1 &
    echo $! >"$stack/pids/$name.pid"
}
ingress_port="${CQ_INGRESS_PORT:-$(cq_free_port)}"
CQ_INGRESS_PORT="$ingress_port" spawn ingress "$build/ingress/chatops-ingress" --config "$config"
ports=("ingress=$ingress_port")
for n in 1 2; do
    p="$(cq_free_port)"
    CQ_WORKER_HTTP_PORT="$p" spawn "worker$n" "$build/worker/chatops-worker" --config "$config"
    ports+=("worker$n=$p")
done
p="$(cq_free_port)"
CQ_NOTIFIER_HTTP_PORT="$p" spawn notifier "$build/notifier/chatops-notifier" --config "$config"
ports+=("notifier=$p")
printf '%s\n' "${ports[@]}" >"$stack/ports"

for entry in "${ports[@]}"; do
    name="${entry%%=*}" port="${entry#*=}"
    for _ in $(seq 150); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then break; fi
        if ! cq_pid_alive "$stack/pids/$name.pid"; then
            tail -n 20 "$stack/logs/$name.log" >&2
            cq_die "$name exited during start (log: $stack/logs/$name.log)"
        fi
        sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || cq_die "$name not ready on :$port"
done

cat <<INFO
chatops is running (config: $config)
  Kafka     $CQ_KAFKA_BROKERS
  Redis     127.0.0.1:$CQ_REDIS_PORT
  ingress   http://127.0.0.1:$ingress_port   (/slack/commands /slack/events /feishu/events /gitlab/webhook)
$(for e in "${ports[@]:1}"; do printf '  %-9s http://127.0.0.1:%s/metrics\n' "${e%%=*}" "${e#*=}"; done)
  logs      $stack/logs/
INFO
if [[ $detach -eq 1 ]]; then
    echo "detached; stop with: scripts/run.sh --stop"
    exit 0
fi
echo "Ctrl-C stops everything."
while true; do
    for f in "$stack"/pids/*.pid; do
        if ! cq_pid_alive "$f"; then
            n="$(basename "$f" .pid)"
            cq_log "$n exited; last log lines:"
            tail -n 20 "$stack/logs/$n.log" >&2 || true
            exit 1
        fi
    done
    sleep 1
done
