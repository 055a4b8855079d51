#!/usr/bin/env bash
# bench/ingress/run.sh: chatops-ingress (every answer Kafka-confirmed, acks=all) against a Slack
# Bolt app (ack only, no queue) under the same wrk load of distinct signed slash commands, with
# two ceilings in the same run: nginx `return 200` (1 worker: the HTTP round trip with wrk on
# these cores) and cq-mhd-floor (libmicrohttpd with the ingress's own flags answering 200, no
# check, no Kafka; also with --suspend: MHD's suspend/resume per request, as the ingress does).
# Prints req/s, p50/p99/p99.9, peak RSS (VmHWM) for each and the ratios. Not a timed test.
#   bench/ingress/run.sh [SECONDS=10] [CONNECTIONS=32]
# Env: CQ_KAFKA_BROKERS or BROKERS=host:port (else a broker is started with scripts/kafka.sh), CQ_BUILD_DIR (default
# build), THREADS (ingress MHD threads, default 1), BOLT_DIR (default ../shared/peers/bolt),
# SKIP_BOLT=1 (no Bolt leg), SKIP_CEILINGS=1 (no nginx/MHD legs), FLOOR_WARMUP (seconds of load
# before each ceiling leg, default 5), WARMUP (seconds, default 60), INGRESS_ARGS (extra flags, e.g.
# "--kafka-conf linger.ms=5"), KEEP_KAFKA=1 (leave the started broker running, print its dir).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
secs=${1:-10}
conns=${2:-32}
build=${CQ_BUILD_DIR:-$repo/build-rel}  # a RelWithDebInfo build
threads=${THREADS:-1}
warmup=${WARMUP:-60}  # a freshly started broker JVM needs about a minute of load before its JIT settles
bolt_src=${BOLT_DIR:-$repo/../shared/peers/bolt}
if [[ ${SKIP_BOLT:-} != 1 && ! -d $bolt_src ]]; then
    echo "run.sh: the Bolt peer is not at $bolt_src: set BOLT_DIR (or SKIP_BOLT=1)" >&2
    exit 1
fi
secret=8f742231b10e8888abcd99yyyzzz85a5
exe=$build/ingress/chatops-ingress
[[ -x $exe ]] || { echo "run.sh: $exe missing: build first (cmake --build $build)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    echo "run.sh: installing wrk" >&2
    apt-get install -y wrk >/dev/null
fi

tmp=$(mktemp -d /tmp/cq-bench-ingress.XXXXXX)
pids=()
own_kafka=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ -n $own_kafka ]]; then "$repo/scripts/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

BROKERS=${BROKERS:-${CQ_KAFKA_BROKERS:-}}
if [[ -z $BROKERS ]]; then
    echo "starting Kafka (scripts/kafka.sh)..." >&2
    "$repo/scripts/kafka.sh" start "$tmp/kafka" >&2
    own_kafka=1
    BROKERS=$(cat "$tmp/kafka/bootstrap")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
    for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "run.sh: $1 never answered" >&2
    return 1
}
run_wrk() { # name url lua
    wrk -t1 -c"$conns" -d"${secs}s" -s "$3" "$2" > "$tmp/$1.out"
    local rps p50 p99 p999 non
    rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$1.out")
    p50=$(awk '/^p50_us/ {print $2}' "$tmp/$1.out")
    p99=$(awk '/^p99_us/ {print $2}' "$tmp/$1.out")
    p999=$(awk '/^p99.9_us/ {print $2}' "$tmp/$1.out")
    non=$(awk '/^non2xx/ {print $2}' "$tmp/$1.out")
    echo "$rps $p50 $p99 $p999 $non"
}

python3 "$here/slack_wrk.py" "$tmp/ingress.lua" /slack/commands 1000 "$secret" >/dev/null

# --- ceilings: nginx return 200, the bare MHD floor (same wrk, same signed bodies) -------
floor_warmup=${FLOOR_WARMUP:-5}
warm_wrk() { # url lua seconds
    if (( $3 > 0 )); then wrk -t1 -c"$conns" -d"${3}s" -s "$2" "$1" >/dev/null; fi
}
n_rps='' m_rps='' s_rps=''
if [[ ${SKIP_CEILINGS:-} != 1 ]]; then
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $nginx_bin ]] || { echo "run.sh: nginx missing: scripts/deps.sh bench" >&2; exit 1; }
    floor=$build/bin/cq-mhd-floor
    [[ -x $floor ]] || { echo "run.sh: $floor missing: build first (cmake --build $build)" >&2; exit 1; }
    nport=$(free_port)
    mkdir -p "$tmp/nginx"
    cat > "$tmp/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nport;
        default_type application/json;
        location / { return 200 '{"response_type":"ephemeral","text":"Queued: status staging (request 0123456789abcdef)"}'; }
    }
}
NGINX
    "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2> "$tmp/nginx/stderr" &
    ngx=$!
    pids+=("$ngx")
    wait_http "http://127.0.0.1:$nport/"
    warm_wrk "http://127.0.0.1:$nport" "$tmp/ingress.lua" "$floor_warmup"
    read -r n_rps n_p50 n_p99 n_p999 n_non < <(run_wrk nginx "http://127.0.0.1:$nport" "$tmp/ingress.lua")
    kill -TERM "$ngx"; wait "$ngx" 2>/dev/null || true
    pids=("${pids[@]/$ngx}")
    echo "nginx    rps=$n_rps p50_us=$n_p50 p99_us=$n_p99 p99.9_us=$n_p999 non2xx=$n_non (return 200, 1 worker: the ceiling)"

    for mode in plain suspend; do
        mport=$(free_port)
        if [[ $mode == plain ]]; then "$floor" "$mport" & else "$floor" "$mport" --suspend & fi
        mhd=$!
        pids+=("$mhd")
        wait_http "http://127.0.0.1:$mport/"
        warm_wrk "http://127.0.0.1:$mport" "$tmp/ingress.lua" "$floor_warmup"
        read -r x_rps x_p50 x_p99 x_p999 x_non < <(run_wrk "mhd-$mode" "http://127.0.0.1:$mport" "$tmp/ingress.lua")
        x_rss=$(awk '/VmHWM/ {print $2}' "/proc/$mhd/status")
        kill -TERM "$mhd"; wait "$mhd" 2>/dev/null || true
        pids=("${pids[@]/$mhd}")
        if [[ $mode == plain ]]; then
            m_rps=$x_rps
            echo "mhd      rps=$x_rps p50_us=$x_p50 p99_us=$x_p99 p99.9_us=$x_p999 non2xx=$x_non peak_rss_kb=$x_rss (the ingress's MHD flags, 200, no Kafka: the floor)"
        else
            s_rps=$x_rps
            echo "mhd+susp rps=$x_rps p50_us=$x_p50 p99_us=$x_p99 p99.9_us=$x_p999 non2xx=$x_non (the same, suspended and resumed per request)"
        fi
    done
fi

# --- ingress ---------------------------------------------------------------------------
run_id=$(date +%s)-$$
topic=bench.ingress.requests.$run_id
printf '%s' "$secret" > "$tmp/slack_secret"
port=$(free_port)
admin_port=$(free_port) # /readyz and /metrics (ingress.admin_port)
cat > "$tmp/ingress.yaml" <<YAML
log: {level: warn}
kafka:
  brokers: "$BROKERS"
  produce_timeout_ms: 2000
  partitions: 6
  topics: {requests: "$topic", pipeline_events: "bench.ingress.pipeline.$run_id"}
ingress: {listen: 127.0.0.1, port: $port, admin_port: $admin_port, threads: $threads}
slack: {enabled: true, signing_secret: "file:$tmp/slack_secret", command: /deploy}
YAML
# shellcheck disable=SC2086 # INGRESS_ARGS is a word list, e.g. "--kafka-conf linger.ms=5"
"$exe" --config "$tmp/ingress.yaml" ${INGRESS_ARGS:-} 2> "$tmp/ingress.log" &
ing=$!
pids+=("$ing")
for _ in $(seq 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/readyz") == 200 ]] && break
    sleep 0.1
done
if (( warmup > 0 )); then
    wrk -t1 -c"$conns" -d"${warmup}s" -s "$tmp/ingress.lua" "http://127.0.0.1:$port" >/dev/null
fi
before=$(curl -s "http://127.0.0.1:$admin_port/metrics")
read -r i_rps i_p50 i_p99 i_p999 i_non < <(run_wrk ingress "http://127.0.0.1:$port" "$tmp/ingress.lua")
after=$(curl -s "http://127.0.0.1:$admin_port/metrics")
i_rss=$(awk '/VmHWM/ {print $2}' "/proc/$ing/status")
metric() { # text route outcome
    awk -v r="$2" -v o="$3" 'index($0, "chatops_ingress_requests_total{") == 1 &&
        index($0, "route=\"" r "\"") && index($0, "outcome=\"" o "\"") {s += $NF} END {print s + 0}' <<< "$1"
}
queued=$(( $(metric "$after" slack_commands queued) - $(metric "$before" slack_commands queued) ))
notq=$(( $(metric "$after" slack_commands failed) - $(metric "$before" slack_commands failed) ))
kill -TERM "$ing"
wait "$ing" && i_exit=0 || i_exit=$?
pids=("${pids[@]/$ing}")

echo "ingress  rps=$i_rps p50_us=$i_p50 p99_us=$i_p99 p99.9_us=$i_p999 non2xx=$i_non peak_rss_kb=$i_rss threads=$threads"
echo "ingress  kafka-confirmed answers in the window: queued=$queued not_queued=$notq; SIGTERM exit=$i_exit"

ceiling_ratios() {
    [[ -n $n_rps ]] || return 0
    python3 - "$i_rps" "$n_rps" "$m_rps" "$s_rps" <<'PY'
import sys
ir, nr, mr, sr = map(float, sys.argv[1:])
print("ratio    ingress/nginx=%.2f  mhd/nginx=%.2f  mhd+suspend/mhd=%.2f  ingress/mhd=%.2f "
      "(the HTTP library and kernel: mhd/nginx; suspend/resume: mhd+suspend/mhd; our work and "
      "Kafka: ingress/mhd+suspend=%.2f)" % (ir / nr, mr / nr, sr / mr, ir / mr, ir / sr))
PY
}
if [[ ${SKIP_BOLT:-} == 1 ]]; then ceiling_ratios; exit 0; fi
if [[ ! -d $bolt_src ]]; then
    echo "bolt     skipped: the peer ($bolt_src) is not on this machine; set BOLT_DIR"
    ceiling_ratios
    exit 0
fi

# --- Bolt peer -------------------------------------------------------------------------
cp -r "$bolt_src" "$tmp/bolt"
chmod -R u+w "$tmp/bolt"
rm -rf "$tmp/bolt/node_modules"
(cd "$tmp/bolt" && npm ci --silent --no-audit --no-fund) >/dev/null
bport=$(free_port)
PORT=$bport SLACK_SIGNING_SECRET=$secret node "$tmp/bolt/app.js" > "$tmp/bolt.log" 2>&1 &
bolt=$!
pids+=("$bolt")
wait_http "http://127.0.0.1:$bport/"
python3 "$here/slack_wrk.py" "$tmp/bolt.lua" /slack/events 1000 "$secret" >/dev/null
if (( warmup > 0 )); then
    wrk -t1 -c"$conns" -d"${warmup}s" -s "$tmp/bolt.lua" "http://127.0.0.1:$bport" >/dev/null
fi
read -r b_rps b_p50 b_p99 b_p999 b_non < <(run_wrk bolt "http://127.0.0.1:$bport" "$tmp/bolt.lua")
b_rss=$(awk '/VmHWM/ {print $2}' "/proc/$bolt/status")
echo "bolt     rps=$b_rps p50_us=$b_p50 p99_us=$b_p99 p99.9_us=$b_p999 non2xx=$b_non peak_rss_kb=$b_rss"

python3 - "$i_rps" "$b_rps" "$i_p99" "$b_p99" "$i_rss" "$b_rss" <<'PY'
import sys
ir, br, ip, bp, im, bm = map(float, sys.argv[1:])
print("ratio    rps ingress/bolt=%.2fx (target >= 6x)  p99 ingress/bolt=%.2f (target <= 0.33)  "
      "rss ingress=%.1f MB (target < 30) bolt=%.1f MB" % (ir / br, ip / bp, im / 1024, bm / 1024))
PY
ceiling_ratios
