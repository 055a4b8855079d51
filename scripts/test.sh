#!/usr/bin/env bash
# test.sh: the one test command. Installs what is missing, fetches the Kafka broker, then
# builds and runs every test (unit + integration against a real broker and Redis that the
# ctest fixtures start) in two trees: build/ (RelWithDebInfo, -Werror) and build-asan/
# (Debug, AddressSanitizer + UBSan), then the threaded parts under ThreadSanitizer
# (scripts/tsan.sh, build-tsan/). First scripts/lint.sh (clang-format, shellcheck).
#   scripts/test.sh [--quick] [CTEST ARGS...]   --quick: only build/; e.g. -L unit, -R kafka
set -euo pipefail
CQ_PROG=test.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quick=0
if [[ "${1:-}" == "--quick" ]]; then
    quick=1
    shift
fi
ctest_args=("$@")
jobs="$(nproc 2>/dev/null || echo 2)"

"$CQ_REPO_ROOT/scripts/deps.sh"
"$CQ_REPO_ROOT/scripts/kafka.sh" fetch

failed=()

# Formatting (.clang-format) and shellcheck: cheap, and a failure does not stop the build.
if ! "$CQ_REPO_ROOT/scripts/lint.sh"; then
    failed+=("lint")
fi

# ctest's fixture cleanup does not run when ctest is interrupted or times out; never leave a
# broker or redis-server behind (stop is a no-op when they already stopped).
cleanup() {
    local t
    for t in build build-asan build-tsan; do
        "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$CQ_REPO_ROOT/$t/stack/kafka" >/dev/null 2>&1 || true
        "$CQ_REPO_ROOT/scripts/kafka.sh" stop "$CQ_REPO_ROOT/$t/stack/kafka_sasl" >/dev/null 2>&1 || true
        "$CQ_REPO_ROOT/scripts/redis.sh" stop "$CQ_REPO_ROOT/$t/stack/redis" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_tree NAME CMAKE-ARGS...: configure, build and ctest one tree; records a failure.
run_tree() {
    local name="$1" dir="$CQ_REPO_ROOT/$1" t0
    shift
    t0=$(date +%s)
    cq_log "== $name: configure"
    if ! cmake -S "$CQ_REPO_ROOT" -B "$dir" "$@"; then
        failed+=("$name (configure)")
        return 0
    fi
    cq_log "== $name: build"
    # Keep going past a broken target and still run ctest, so one failure does not hide
    # the state of everything else (tests whose binary is missing fail as "Not Run").
    if ! MAKEFLAGS="-k${MAKEFLAGS:+ $MAKEFLAGS}" cmake --build "$dir" -j "$jobs"; then
        failed+=("$name (build)")
    fi
    rm -f "$dir/faults-counts.txt"
    cq_log "== $name: ctest"
    # Integration tests share the run's one broker and Redis but use unique topics, groups
    # and keys, so two at a time is safe.
    if ! (cd "$dir" && ctest --output-on-failure -j2 "${ctest_args[@]}"); then
        failed+=("$name (tests)")
    fi
    if [[ -s "$dir/faults-counts.txt" ]]; then
        cq_log "== $name: fault suite counts (tests/faults; lost and duplicates must be 0)"
        sort "$dir/faults-counts.txt" >&2
    fi
    cq_log "== $name: done in $(($(date +%s) - t0))s"
}

run_tree build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCQ_WERROR=ON -DCQ_SANITIZE=
if [[ $quick -eq 0 ]]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    run_tree build-asan -DCMAKE_BUILD_TYPE=Debug -DCQ_WERROR=ON -DCQ_SANITIZE=address,undefined
    unset ASAN_OPTIONS UBSAN_OPTIONS
    # The threaded parts (the consumer's lag thread, libmicrohttpd's pool) under TSan.
    cq_log "== build-tsan: ThreadSanitizer subset (scripts/tsan.sh)"
    if ! "$CQ_REPO_ROOT/scripts/tsan.sh" "$CQ_REPO_ROOT/build-tsan"; then
        failed+=("build-tsan (tests)")
    fi
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    cq_log "FAILED: ${failed[*]}"
    exit 1
fi
cq_log "all tests passed"
