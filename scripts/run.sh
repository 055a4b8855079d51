#!/usr/bin/env bash
# run.sh: the README's run command. Installs what is missing, builds, starts Kafka (KRaft from
# the cached Maven jars) and Redis under .stack/ (unless CQ_KAFKA_BROKERS / CQ_REDIS_PORT name
# running ones), creates the topics, starts the demo GitLab and Slack/Feishu sinks, then the
# ingress, two workers and the notifier, prints where everything listens, stops all on Ctrl-C.
#   scripts/run.sh [--config FILE] [--no-demo] [--detach]   start (--detach: print and return)
#   scripts/run.sh --stop                                   stop what --detach started
# Environment: CQ_RUN_DIR (state, logs; default .stack), CQ_BUILD_DIR (default build),
#   CQ_RUN_NO_BUILD=1 (use the binaries as built), CQ_INGRESS_PORT (default free), CQ_DEMO_PORT_BASE (demo GitLab, Slack, Feishu on BASE,
#   BASE+1, BASE+2, and Mattermost, Discord, Webex, DingTalk on BASE+3..BASE+6; default 18080 as
#   in examples/ops.yaml, else a derived config is written).
# After start, RUN_DIR/env holds the demo secrets and addresses; chatopsctl reads it.
set -euo pipefail
CQ_PROG=run.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

config="$CQ_REPO_ROOT/examples/ops.yaml"
detach=0
demo=1
stack="${CQ_RUN_DIR:-$CQ_REPO_ROOT/.stack}"
build="${CQ_BUILD_DIR:-$CQ_REPO_ROOT/build}"
stop_stack() {
    for f in "$stack"/pids/*.pid; do [[ -e "$f" ]] && cq_stop_pidfile "$f" 15; done
    if [[ -d "$stack/redis" ]]; then "$CQ_REPO_ROOT/scripts/redis.sh" stop "$stack/redis" || true; fi
    if [[ -d "$stack/kafka" ]]; then "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$stack/kafka" || true; fi
    rm -f "$stack/env" "$stack/ports"
}
while [[ $# -gt 0 ]]; do
    case "$1" in
    --config)
        [[ $# -ge 2 && -f "$2" ]] || cq_die "--config needs an existing FILE"
        config="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
        shift 2 ;;
    --detach) detach=1; shift ;;
    --no-demo) demo=0; shift ;;
    --stop) stop_stack >/dev/null 2>&1; cq_log "stopped (run dir $stack)"; exit 0 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) cq_die "unknown argument $1 (try --help)" ;;
    esac
done

if [[ "${CQ_RUN_NO_BUILD:-0}" == 1 ]]; then
    cq_log "using the binaries in $build as they are (CQ_RUN_NO_BUILD=1)"
else
    "$CQ_REPO_ROOT/scripts/deps.sh"
    cq_log "building into $build"
    # An existing build dir (a test's, a developer's) keeps its own build type and options.
    if [[ -f "$build/CMakeCache.txt" ]]; then
        cmake -S "$CQ_REPO_ROOT" -B "$build" >/dev/null
    else
        cmake -S "$CQ_REPO_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
        --target chatops-ingress chatops-worker chatops-notifier chatopsctl >/dev/null
fi

mkdir -p "$stack/pids" "$stack/logs"
stop_all() {
    trap - INT TERM EXIT
    cq_log "stopping services"
    stop_stack >/dev/null 2>&1
    cq_log "stopped"
}
# Ctrl-C / SIGTERM: stop everything and exit 0 (a signal must not fall back into the watch loop).
[[ $detach -eq 1 ]] || { trap 'stop_all; exit 0' INT TERM; trap stop_all EXIT; }
# A failed --detach start leaves nothing behind either.
# shellcheck disable=SC2154 # rc is assigned inside the trap string
[[ $detach -eq 0 ]] || trap 'rc=$?; [[ $rc -eq 0 ]] || stop_stack >/dev/null 2>&1' EXIT

if [[ -n "${CQ_KAFKA_BROKERS:-}" ]]; then
    cq_log "using the Kafka at $CQ_KAFKA_BROKERS"
else
    "$CQ_REPO_ROOT/scripts/kafka.sh" fetch
    cq_log "starting Kafka (KRaft, one node) — this takes a few seconds"
    "$CQ_REPO_ROOT/scripts/kafka.sh" start "$stack/kafka" >/dev/null
    CQ_KAFKA_BROKERS="$(cat "$stack/kafka/bootstrap")"
fi
if [[ -n "${CQ_REDIS_PORT:-}" ]]; then
    cq_log "using the Redis at ${CQ_REDIS_HOST:-127.0.0.1}:$CQ_REDIS_PORT"
else
    cq_log "starting Redis"
    "$CQ_REPO_ROOT/scripts/redis.sh" start "$stack/redis" >/dev/null
    CQ_REDIS_PORT="$(cat "$stack/redis/port")"
fi
CQ_REDIS_HOST="${CQ_REDIS_HOST:-127.0.0.1}"

# Demo secrets: the examples reference them as ${ENV}; real deployments set their own.
: "${SLACK_SIGNING_SECRET:=demo-slack-signing-secret}" "${SLACK_BOT_TOKEN:=xoxb-demo}"
: "${FEISHU_APP_SECRET:=demo-feishu-app-secret}"
: "${FEISHU_VERIFICATION_TOKEN:=demo-feishu-verification-token}"
: "${FEISHU_ENCRYPT_KEY:=demo-feishu-encrypt-key}" "${GITLAB_API_TOKEN:=demo-gitlab-api-token}"
: "${GITLAB_WEBHOOK_TOKEN:=demo-gitlab-webhook-token}" "${LB_TRIGGER_TOKEN:=demo-lb-trigger-token}"
: "${DEPLOY_TRIGGER_TOKEN:=demo-deploy-trigger-token}"
: "${DINGTALK_APP_SECRET:=demo-dingtalk-app-secret}" "${MATTERMOST_COMMAND_TOKEN:=demo-mm-command}"
: "${MATTERMOST_BOT_TOKEN:=demo-mm-bot}" "${DISCORD_BOT_TOKEN:=demo-discord-bot}"
: "${WEBEX_WEBHOOK_SECRET:=demo-webex-webhook-secret}" "${WEBEX_BOT_TOKEN:=demo-webex-bot}"
secret_vars=(SLACK_SIGNING_SECRET SLACK_BOT_TOKEN FEISHU_APP_SECRET FEISHU_VERIFICATION_TOKEN
    FEISHU_ENCRYPT_KEY GITLAB_API_TOKEN GITLAB_WEBHOOK_TOKEN LB_TRIGGER_TOKEN DEPLOY_TRIGGER_TOKEN
    DINGTALK_APP_SECRET MATTERMOST_COMMAND_TOKEN MATTERMOST_BOT_TOKEN DISCORD_BOT_TOKEN
    WEBEX_WEBHOOK_SECRET WEBEX_BOT_TOKEN)
export "${secret_vars[@]}" CQ_KAFKA_BROKERS CQ_REDIS_HOST CQ_REDIS_PORT

# The demo fakes listen where examples/ops.yaml points (18080-18082) unless told otherwise;
# then a copy of the config with those addresses goes into the run dir.
base="${CQ_DEMO_PORT_BASE:-18080}"
[[ "$base" =~ ^[0-9]+$ ]] || cq_die "CQ_DEMO_PORT_BASE must be a port number"
gitlab_port=$base slack_port=$((base + 1)) feishu_port=$((base + 2))
mm_port=$((base + 3)) discord_port=$((base + 4)) webex_port=$((base + 5)) dingtalk_port=$((base + 6))
if [[ $demo -eq 1 && $base -ne 18080 ]]; then
    sed -e "s#127\.0\.0\.1:18080#127.0.0.1:$gitlab_port#g" \
        -e "s#127\.0\.0\.1:18081#127.0.0.1:$slack_port#g" \
        -e "s#127\.0\.0\.1:18082#127.0.0.1:$feishu_port#g" \
        -e "s#127\.0\.0\.1:18083#127.0.0.1:$mm_port#g" \
        -e "s#127\.0\.0\.1:18084#127.0.0.1:$discord_port#g" \
        -e "s#127\.0\.0\.1:18085#127.0.0.1:$webex_port#g" \
        -e "s#127\.0\.0\.1:18086#127.0.0.1:$dingtalk_port#g" "$config" >"$stack/config.yaml"
    config="$stack/config.yaml"
    export CQ_GITLAB_BASE_URL="http://127.0.0.1:$gitlab_port"
fi
export CHATOPS_CONFIG="$config"

cq_log "creating topics"
"$build/tools/chatopsctl" --config "$config" topics ensure >/dev/null

# spawn NAME CMD...: start a process in the background with its own log and pid file.
spawn() {
    local name="$1"
    shift
    "$@" >"$stack/logs/$name.log" 2>&1 &
    echo $! >"$stack/pids/$name.pid"
}
# wait_up NAME PORT PATH: until http://127.0.0.1:PORT/PATH answers 2xx, or NAME died.
wait_up() {
    local name="$1" port="$2" path="$3"
    for _ in $(seq 150); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port$path" 2>/dev/null; then return 0; fi
        if ! cq_pid_alive "$stack/pids/$name.pid"; then
            tail -n 20 "$stack/logs/$name.log" >&2
            cq_die "$name exited during start (log: $stack/logs/$name.log)"
        fi
        sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port$path" || cq_die "$name not ready on :$port"
}

ingress_port="${CQ_INGRESS_PORT:-$(cq_free_port)}"
fakes=()
if [[ $demo -eq 1 ]]; then
    cq_log "starting the demo GitLab (:$gitlab_port), Slack (:$slack_port), Feishu (:$feishu_port)"
    for p in "$gitlab_port" "$slack_port" "$feishu_port" "$mm_port" "$discord_port" "$webex_port" \
        "$dingtalk_port"; do
        if cq_port_open "$p"; then
            cq_die "port $p is in use (another run.sh?); stop it or set CQ_DEMO_PORT_BASE"
        fi
    done
    fakes_py="$CQ_REPO_ROOT/scripts/demo_fakes.py"
    spawn fake-gitlab python3 "$fakes_py" gitlab --port "$gitlab_port" \
        --api-token "$GITLAB_API_TOKEN" --trigger-token "$LB_TRIGGER_TOKEN" \
        --trigger-token "$DEPLOY_TRIGGER_TOKEN" \
        --hook-url "http://127.0.0.1:$ingress_port/gitlab/webhook" --hook-token "$GITLAB_WEBHOOK_TOKEN"
    spawn fake-slack python3 "$fakes_py" slack --port "$slack_port" --bot-token "$SLACK_BOT_TOKEN"
    spawn fake-feishu python3 "$fakes_py" feishu --port "$feishu_port" \
        --app-id "$(sed -n 's/^ *app_id: *\([^ #]*\).*/\1/p' "$config" | head -n1)" \
        --app-secret "$FEISHU_APP_SECRET"
    # issue 18's notifier sinks: the bot tokens and app key/secret examples/ops.yaml names
    spawn fake-mattermost python3 "$fakes_py" mattermost --port "$mm_port" \
        --bot-token "$MATTERMOST_BOT_TOKEN"
    spawn fake-discord python3 "$fakes_py" discord --port "$discord_port" \
        --bot-token "$DISCORD_BOT_TOKEN" --app-id 100000000000000001
    spawn fake-webex python3 "$fakes_py" webex --port "$webex_port" --bot-token "$WEBEX_BOT_TOKEN"
    spawn fake-dingtalk python3 "$fakes_py" dingtalk --port "$dingtalk_port" \
        --app-key ding-app-key --app-secret "$DINGTALK_APP_SECRET" --robot-code ding-robot
    fakes=("fake-gitlab=$gitlab_port" "fake-slack=$slack_port" "fake-feishu=$feishu_port"
        "fake-mattermost=$mm_port" "fake-discord=$discord_port" "fake-webex=$webex_port"
        "fake-dingtalk=$dingtalk_port")
    for e in "${fakes[@]}"; do wait_up "${e%%=*}" "${e#*=}" /_log; done
fi

ingress_admin_port="$(cq_free_port)"
CQ_INGRESS_PORT="$ingress_port" CQ_INGRESS_ADMIN_PORT="$ingress_admin_port" \
    spawn ingress "$build/ingress/chatops-ingress" --config "$config"
# the ingress serves /readyz and /metrics on its admin port only (ingress.admin_port)
ports=("ingress-admin=$ingress_admin_port")
for n in 1 2; do
    p="$(cq_free_port)"
    CQ_WORKER_HTTP_PORT="$p" spawn "worker$n" "$build/worker/chatops-worker" --config "$config"
    ports+=("worker$n=$p")
done
p="$(cq_free_port)"
CQ_NOTIFIER_HTTP_PORT="$p" spawn notifier "$build/notifier/chatops-notifier" --config "$config"
ports+=("notifier=$p")
printf '%s\n' "ingress=$ingress_port" "${ports[@]}" "${fakes[@]}" >"$stack/ports"

cq_log "waiting for the services' /readyz"
for entry in "${ports[@]}"; do
    name="${entry%%=*}"
    wait_up "${name%-admin}" "${entry#*=}" /readyz
done

# What chatopsctl (send, pipelines, dlq) needs in another shell: it reads this file.
# The file is created inside the umask 077 subshell: it holds secrets, so it is 0600 from birth.
(
    umask 077
    {
        for v in "${secret_vars[@]}" CQ_KAFKA_BROKERS CQ_REDIS_HOST CQ_REDIS_PORT CHATOPS_CONFIG; do
            printf '%s=%s\n' "$v" "${!v}"
        done
        printf 'CQ_INGRESS_PORT=%s\n' "$ingress_port"
        [[ -z "${CQ_GITLAB_BASE_URL:-}" ]] || printf 'CQ_GITLAB_BASE_URL=%s\n' "$CQ_GITLAB_BASE_URL"
    } >"$stack/env"
)

cat <<INFO
chatops is running (config: $config)
  Kafka        $CQ_KAFKA_BROKERS
  Redis        $CQ_REDIS_HOST:$CQ_REDIS_PORT
  ingress      http://127.0.0.1:$ingress_port   (/slack/commands /slack/events /feishu/events /gitlab/webhook)
$(for e in "${ports[@]}"; do printf '  %-13s http://127.0.0.1:%s/metrics\n' "${e%%=*}" "${e#*=}"; done)
$(if [[ $demo -eq 1 ]]; then
    printf '  %-12s http://127.0.0.1:%s   (pipelines: /_pipelines, requests: /_log)\n' \
        "demo GitLab" "$gitlab_port"
    printf '  %-12s http://127.0.0.1:%s   (what would be posted to Slack: /_log)\n' \
        "demo Slack" "$slack_port"
    printf '  %-12s http://127.0.0.1:%s   (what would be posted to Feishu: /_log)\n' \
        "demo Feishu" "$feishu_port"
fi)
  logs         $stack/logs/
Try:  $build/tools/chatopsctl send --as bob --channel ops '/ops lb weight blue 30'
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
