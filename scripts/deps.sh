#!/usr/bin/env bash
# deps.sh: installs the Debian packages chatops needs to build, test and run.
#   deps.sh          build + test deps (compiler, libraries, redis-server + redis-sentinel,
#                    Java + Maven, clang-format + shellcheck for scripts/lint.sh, kubectl +
#                    node/npm + promtool for the offline deployment checks: test_kubernetes.py
#                    and test_observability.py, openssl for the kafka_sasl fixture)
#   deps.sh bench    also the benchmark peers (wrk, nginx)
# As root: apt-get update once, then install what is missing. Otherwise: print the exact
# apt-get line and exit 1. A fast no-op when everything is already there.
set -euo pipefail
CQ_PROG=deps.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PKGS=(build-essential cmake pkg-config librdkafka-dev libhiredis-dev libcjson-dev
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libyaml-dev libuv1-dev
    redis-server redis-sentinel maven default-jre-headless python3 curl clang-format shellcheck
    kubernetes-client nodejs npm prometheus openssl)
BENCH_PKGS=(wrk nginx)

case "${1:-}" in
"") ;;
bench) PKGS+=("${BENCH_PKGS[@]}") ;;
*) echo "usage: deps.sh [bench]" >&2; exit 2 ;;
esac

# A package counts as present when dpkg has it installed, or (for tools that may come from
# elsewhere, e.g. a pyenv python3 or a JDK in /opt) when its command is on PATH.
have() {
    local pkg="$1" cmd=""
    case "$pkg" in
    python3) cmd=python3 ;;
    default-jre-headless) cmd=java ;;
    maven) cmd=mvn ;;
    cmake) cmd=cmake ;;
    curl) cmd=curl ;;
    openssl) cmd=openssl ;;
    wrk) cmd=wrk ;;
    nginx) cmd=nginx ;;
    redis-server) cmd=redis-server ;;
    redis-sentinel) cmd=redis-sentinel ;;
    clang-format) cmd=clang-format ;;
    shellcheck) cmd=shellcheck ;;
    kubernetes-client) cmd=kubectl ;;
    nodejs) cmd=node ;;
    npm) cmd=npm ;;
    prometheus) cmd=promtool ;;
    esac
    if [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null 2>&1; then
        return 0
    fi
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == "installed" ]]
}

missing=()
for p in "${PKGS[@]}"; do
    have "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
    cq_log "missing packages: ${missing[*]}"
    cq_log "run as root:  apt-get update && $line"
    exit 1
fi
command -v apt-get >/dev/null || cq_die "missing packages (${missing[*]}) and no apt-get"
cq_log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends "${missing[@]}"
