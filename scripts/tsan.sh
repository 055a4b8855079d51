#!/usr/bin/env bash
# tsan.sh: the threaded parts under ThreadSanitizer. Builds a tree with -DCQ_SANITIZE=thread
# (default build-tsan/) and runs the ctest subset labelled `tsan`: the consumer's lag thread
# (integration.kafka, integration.py.worker) and libmicrohttpd's thread pool in the ingress
# (integration.py.ingress_pool, CQT_INGRESS_THREADS=2). A data race aborts the process that
# has it (halt_on_error), so the test that started it fails; the report is in its output or,
# for a service, in the service's log. Known races inside uninstrumented libraries are in
# tests/tsan.supp (each with its reason).
#   scripts/tsan.sh [BUILD_DIR] [CTEST ARGS...]
set -euo pipefail
CQ_PROG=tsan.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build="$CQ_REPO_ROOT/build-tsan"
if [[ $# -gt 0 && "$1" != -* ]]; then
    build="$1"
    shift
fi
cleanup() {
    "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$build/stack/kafka" >/dev/null 2>&1 || true
    "$CQ_REPO_ROOT/scripts/redis.sh" stop "$build/stack/redis" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
cmake -S "$CQ_REPO_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCQ_WERROR=ON \
    -DCQ_SANITIZE=thread >/dev/null
cmake --build "$build" -j "${CQ_JOBS:-2}" --target chatops-ingress chatops-worker \
    chatops-notifier chatopsctl test_kafka cqt-consume cqt-produce cqt-topic_dump >/dev/null
cq_log "built $build in $(($(date +%s) - t0)) s"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
suppressions=$CQ_REPO_ROOT/tests/tsan.supp ${TSAN_OPTIONS:-}"
cd "$build"
ctest --output-on-failure -L tsan "$@"
cq_log "done in $(($(date +%s) - t0)) s"
