#!/usr/bin/env bash
# kafka.sh: a single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for
# dev, CI and the demo, run from the Maven Central jars; no Docker, no tarball.
#   kafka.sh fetch          download the broker jars into the cache (idempotent)
#   kafka.sh start DIR      start on free ports; DIR/bootstrap gets "127.0.0.1:PORT"
#   kafka.sh start DIR --advertise-port N   (or CQ_KAFKA_ADVERTISE_PORT=N) also opens an
#                           EXTERNAL listener on a free port, written to DIR/external, that
#                           advertises 127.0.0.1:N: clients that bootstrap through a proxy on
#                           N (tests/support/tcpproxy.py, targeting DIR/external) then reach
#                           the broker only through that proxy. DIR/bootstrap stays direct.
#   kafka.sh start DIR --sasl-ssl   (may follow --advertise-port N) also opens a SASL_SSL
#                           listener on a free port, written to DIR/sasl_ssl: SCRAM-SHA-512 and
#                           SCRAM-SHA-256 user DIR/sasl_username (chatops) with a random
#                           password in DIR/sasl_password, created at format time (and PLAIN
#                           for the same user: librdkafka < 2.6.1 fails SCRAM against Kafka
#                           4.x, librdkafka#4895); a throwaway
#                           CA (DIR/tls/ca.pem) signs the broker's certificate (127.0.0.1,
#                           localhost). The inter-broker listener stays PLAINTEXT (DIR/bootstrap).
#   kafka.sh stop DIR       SIGTERM, then SIGKILL after 30 s
#   kafka.sh resume DIR     start the stopped (or killed) broker of DIR again: same ports, same data
#   kafka.sh status DIR     exit 0 when running and answering
set -euo pipefail
CQ_PROG=kafka.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_VERSION="${CQ_KAFKA_VERSION:-4.3.1}"
SCALA_VERSION=2.13
LOG4J_VERSION=2.25.3
# kafka 4.x pulls slf4j-api 1.7 transitively, but log4j-slf4j2-impl is an SLF4J 2 provider:
# with a 1.7 API it is ignored and all broker logging is lost ("no providers").
SLF4J_VERSION=2.0.17
KAFKA_HOME="$CQ_CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.complete"
START_TIMEOUT="${CQ_KAFKA_START_TIMEOUT:-120}"
JAVA_OPTS="${CQ_KAFKA_JAVA_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true}"
PROBE="$CQ_REPO_ROOT/scripts/kafka_probe.py"

usage() {
    echo "usage: kafka.sh fetch | start DIR [--advertise-port N] [--sasl-ssl] | stop DIR | resume DIR | status DIR" >&2
    exit 2
}

fetch() {
    if [[ -f "$MARKER" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || cq_die "mvn not found (run scripts/deps.sh)"
    mkdir -p "$KAFKA_HOME"
    # Two fetches at once (test.sh and run.sh) must not interleave.
    exec 9>"$KAFKA_HOME/.lock"
    flock 9
    if [[ -f "$MARKER" ]]; then
        exec 9>&-
        return 0
    fi
    local tmp rc=0
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/cq-kafka-fetch.XXXXXX")"
    cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.chatops</groupId><artifactId>kafka-fetch</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
    cq_log "fetching kafka_$SCALA_VERSION $KAFKA_VERSION from Maven Central into $KAFKA_LIBS"
    (cd "$tmp" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp/libs") >"$tmp/mvn.log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]] || ! ls "$tmp/libs/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" >/dev/null 2>&1; then
        tail -n 30 "$tmp/mvn.log" >&2 || true
        rm -rf "$tmp"
        exec 9>&-
        cq_die "maven could not fetch the Kafka broker (rc=$rc); see the output above"
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$tmp/libs" "$KAFKA_LIBS"
    rm -rf "$tmp"
    date -u +%FT%TZ >"$MARKER"
    exec 9>&-
    cq_log "fetched $(find "$KAFKA_LIBS" -name "*.jar" | wc -l) jars"
}

# Prints the bootstrap when DIR has a live broker that answers, else returns 1.
running() {
    local dir="$1"
    cq_pid_alive "$dir/kafka.pid" && [[ -s "$dir/bootstrap" ]] &&
        python3 "$PROBE" "$(cat "$dir/bootstrap")" >/dev/null
}

# make_tls DIR PASS: a throwaway CA (DIR/tls/ca.pem) and the broker's key and certificate
# signed by it for 127.0.0.1 and localhost, as a PKCS12 keystore (DIR/tls/broker.p12, PASS).
make_tls() {
    local tls="$1/tls" pass="$2"
    command -v openssl >/dev/null || cq_die "openssl not found (needed for --sasl-ssl)"
    rm -rf "$tls"
    mkdir -p "$tls"
    chmod 700 "$tls"
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=chatops test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj "/CN=localhost" -keyout "$tls/broker.key" -out "$tls/broker.csr" &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext" &&
            openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
                -CAcreateserial -days 2 -extfile "$tls/san.ext" -out "$tls/broker.pem" &&
            openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" \
                -certfile "$tls/ca.pem" -name broker -passout "pass:$pass" -out "$tls/broker.p12"
    } >"$tls/openssl.log" 2>&1 || {
        cat "$tls/openssl.log" >&2
        cq_die "making the test CA and broker certificate failed (see above)"
    }
}

write_config() {
    local dir="$1" port="$2" cport="$3" eport="${4:-}" aport="${5:-}" sport="${6:-}" kspass="${7:-}"
    local saslpw="${8:-}"
    local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
    local advertised="PLAINTEXT://127.0.0.1:$port"
    local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [[ -n "$eport" ]]; then
        listeners+=",EXTERNAL://127.0.0.1:$eport"
        advertised+=",EXTERNAL://127.0.0.1:$aport"
        protocols+=",EXTERNAL:PLAINTEXT"
    fi
    if [[ -n "$sport" ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$sport"
        advertised+=",SASL_SSL://127.0.0.1:$sport"
        protocols+=",SASL_SSL:SASL_SSL"
    fi
    cat >"$dir/server.properties" <<PROPS
# Written by scripts/kafka.sh: single-node KRaft broker+controller for tests and dev.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=16777216
PROPS
    if [[ -n "$sport" ]]; then
        cat >>"$dir/server.properties" <<PROPS
# SASL_SSL listener (kafka.sh start --sasl-ssl): SCRAM users from format --add-scram, and
# PLAIN for the same user (librdkafka before 2.6.1 cannot do SCRAM with Kafka 4.x brokers)
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_chatops="$saslpw";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$kspass
ssl.key.password=$kspass
ssl.client.auth=none
PROPS
        chmod 600 "$dir/server.properties" # it holds the PLAIN password
    fi
    # CQ_KAFKA_PROPS: extra broker properties, one key=value per word (benchmarks, experiments).
    local kv
    for kv in ${CQ_KAFKA_PROPS:-}; do
        printf '%s\n' "$kv" >>"$dir/server.properties"
    done
    cat >"$dir/log4j2.properties" <<'LOG'
# Broker logs go to stdout, which kafka.sh appends to DIR/kafka.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.raftsrv.name = kafka.server.KafkaRaftServer
logger.raftsrv.level = info
LOG
}

start() {
    local dir="$1" aport="${2:-}" sasl="${3:-}" eport="" sport="" kspass="" saslpw="" port cport uuid
    local -a scram=()
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if running "$dir"; then
        cq_log "already running (pid $(cat "$dir/kafka.pid")) on $(cat "$dir/bootstrap")"
        cat "$dir/bootstrap"
        return 0
    fi
    fetch
    command -v java >/dev/null || cq_die "java not found (run scripts/deps.sh)"
    local jv
    jv="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    [[ "${jv%%.*}" =~ ^[0-9]+$ && "${jv%%.*}" -ge 17 ]] ||
        cq_die "Kafka $KAFKA_VERSION needs Java 17 or newer; java on PATH is '${jv:-unknown}'"
    # A pid file whose broker does not answer is from a dead or stuck run: clear it.
    cq_stop_pidfile "$dir/kafka.pid" 10
    rm -rf "$dir/data" "$dir/bootstrap" "$dir/external" "$dir/kafka.log" "$dir/sasl_ssl" \
        "$dir/sasl_username" "$dir/sasl_password" "$dir/tls"
    port="$(cq_free_port)"
    cport="$(cq_free_port)"
    while [[ "$cport" == "$port" ]]; do cport="$(cq_free_port)"; done
    if [[ -n "$aport" ]]; then
        eport="$(cq_free_port)"
        while [[ "$eport" == "$port" || "$eport" == "$cport" ]]; do eport="$(cq_free_port)"; done
    fi
    if [[ -n "$sasl" ]]; then
        sport="$(cq_free_port)"
        while [[ "$sport" == "$port" || "$sport" == "$cport" || "$sport" == "$eport" ]]; do
            sport="$(cq_free_port)"
        done
        kspass="$(openssl rand -hex 16)"
        saslpw="$(openssl rand -hex 16)"
        make_tls "$dir" "$kspass"
        (
            umask 077
            echo chatops >"$dir/sasl_username"
            echo "$saslpw" >"$dir/sasl_password"
        )
        scram=(--add-scram "SCRAM-SHA-512=[name=chatops,password=$saslpw]"
            --add-scram "SCRAM-SHA-256=[name=chatops,password=$saslpw]")
    fi
    write_config "$dir" "$port" "$cport" "$eport" "$aport" "$sport" "$kspass" "$saslpw"
    # a cluster id starting with '-' would be read as an option by StorageTool (1 in 64)
    uuid="$(python3 -c 'import base64, uuid
while True:
    u = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not u.startswith("-"):
        break
print(u)')"
    local cp="$KAFKA_LIBS/*"
    local logopt="-Dlog4j2.configurationFile=$dir/log4j2.properties"
    # shellcheck disable=SC2086
    if ! java $JAVA_OPTS "$logopt" -cp "$cp" kafka.tools.StorageTool format \
        -t "$uuid" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1; then
        cat "$dir/format.log" >&2
        cq_die "formatting the log dir failed (see above)"
    fi
    launch "$dir" "$port" "$cport"
    if [[ -n "$eport" ]]; then
        echo "127.0.0.1:$eport" >"$dir/external"
        cq_log "EXTERNAL listener 127.0.0.1:$eport advertises 127.0.0.1:$aport"
    fi
    if [[ -n "$sport" ]]; then
        echo "127.0.0.1:$sport" >"$dir/sasl_ssl"
        cq_log "SASL_SSL listener 127.0.0.1:$sport (SCRAM user chatops, CA $dir/tls/ca.pem)"
    fi
}

# launch DIR PORT CPORT: runs the broker of DIR/server.properties, waits until it answers.
launch() {
    local dir="$1" port="$2" cport="$3" pid t0 now last=0 probe_out="" skip
    local cp="$KAFKA_LIBS/*"
    local logopt="-Dlog4j2.configurationFile=$dir/log4j2.properties"
    skip="$(wc -l 2>/dev/null <"$dir/kafka.log" || echo 0)"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    nohup java $JAVA_OPTS "$logopt" -Dkafka.logs.dir="$dir" -cp "$cp" kafka.Kafka \
        "$dir/server.properties" >>"$dir/kafka.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
    cq_log "started pid $pid, PLAINTEXT 127.0.0.1:$port, CONTROLLER 127.0.0.1:$cport; waiting up to ${START_TIMEOUT}s"
    while :; do
        now=$(date +%s)
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$dir/kafka.log" >&2 || true
            rm -f "$dir/kafka.pid"
            cq_die "broker exited during startup (last log lines above)"
        fi
        if tail -n +"$((skip + 1))" "$dir/kafka.log" 2>/dev/null | grep -q "Kafka Server started" &&
            probe_out="$(python3 "$PROBE" "127.0.0.1:$port")"; then
            break
        fi
        if ((now - t0 >= START_TIMEOUT)); then
            tail -n 30 "$dir/kafka.log" >&2 || true
            cq_log "last probe: ${probe_out:-port $port not answering}"
            cq_stop_pidfile "$dir/kafka.pid" 10
            cq_die "broker not ready after ${START_TIMEOUT}s (last log lines above)"
        fi
        if ((now - last >= 5)); then
            cq_log "waiting for broker ($((now - t0))s)"
            last=$now
        fi
        sleep 0.5
    done
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    cq_log "ready in $(($(date +%s) - t0))s: $probe_out"
    echo "127.0.0.1:$port"
}

# resume DIR: the broker of DIR again, on its old ports and with its data (after stop or a
# kill -9), so clients reconnect to the same address (the fault suite restarts brokers).
resume() {
    local dir port cport
    dir="$(cd "$1" && pwd)"
    [[ -f "$dir/server.properties" ]] || cq_die "$dir has no broker to resume (start it first)"
    if running "$dir"; then
        cat "$dir/bootstrap"
        return 0
    fi
    cq_stop_pidfile "$dir/kafka.pid" 10
    port="$(sed -n 's#^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*#\1#p' "$dir/server.properties")"
    cport="$(sed -n 's#^listeners=.*CONTROLLER://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$dir/server.properties")"
    [[ -n "$port" && -n "$cport" ]] || cq_die "no listeners in $dir/server.properties"
    launch "$dir" "$port" "$cport"
}

stop() {
    local dir="$1"
    if ! cq_pid_alive "$dir/kafka.pid"; then
        rm -f "$dir/kafka.pid"
        cq_log "not running"
        return 0
    fi
    cq_log "stopping pid $(cat "$dir/kafka.pid")"
    cq_stop_pidfile "$dir/kafka.pid" 30
    rm -f "$dir/bootstrap"
}

status() {
    local dir="$1"
    if running "$dir"; then
        echo "running pid $(cat "$dir/kafka.pid") bootstrap $(cat "$dir/bootstrap")"
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-}" in
fetch) [[ $# -eq 1 ]] || usage; fetch ;;
start)
    [[ $# -ge 2 ]] || usage
    sdir="$2" sadv="${CQ_KAFKA_ADVERTISE_PORT:-}" ssasl=""
    shift 2
    while [[ $# -gt 0 ]]; do
        if [[ "$1" == "--advertise-port" && "${2:-}" =~ ^[0-9]+$ ]]; then
            sadv="$2"
            shift 2
        elif [[ "$1" == "--sasl-ssl" ]]; then
            ssasl=1
            shift
        else
            usage
        fi
    done
    start "$sdir" "$sadv" "$ssasl"
    ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
resume) [[ $# -eq 2 ]] || usage; resume "$2" ;;
status) [[ $# -eq 2 ]] || usage; status "$2" ;;
*) usage ;;
esac
