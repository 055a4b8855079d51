#!/usr/bin/env bash
# bench/fuzz/run.sh: builds the libFuzzer targets with clang (-DCQ_FUZZ=ON) in their own build
# directory and fuzzes every target (tests/fuzz/fuzz_*.c) for MINUTES minutes each, starting
# from a copy of its seed corpus (tests/fuzz/corpus/NAME), then reports per target the runs,
# the coverage, the inputs that found new coverage, and the findings: crash-/leak-/timeout-/
# oom- files whose bytes are not already in the seed corpus. Exits 1 when there is a finding.
# Before a release: at least 10 minutes per target (the default). See tests/fuzz/README.md.
#   bench/fuzz/run.sh [MINUTES=10] [TARGET...]          e.g. bench/fuzz/run.sh 1 config
# Env: CQ_FUZZ_BUILD (build dir, default build-fuzz), OUT (results, default a new
# /tmp/cq-fuzz.XXXXXX, kept), BUILD_JOBS (default 2), MAX_LEN (4096), RSS_MB (2048),
# TIMEOUT_S (per input, 10), CC (default clang).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
minutes=${1:-10}
shift || true
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "run.sh: MINUTES must be a number" >&2; exit 2; }
build=${CQ_FUZZ_BUILD:-$repo/build-fuzz}
cc=${CC:-clang}
command -v "$cc" >/dev/null || {
    echo "run.sh: $cc not found: apt-get install -y clang (libFuzzer ships with it)" >&2
    exit 2
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for src in "$repo"/tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        [[ $name == fuzz_common ]] && continue
        targets+=("${name#fuzz_}")
    done
fi
for t in "${targets[@]}"; do
    [[ -f $repo/tests/fuzz/fuzz_$t.c ]] || { echo "run.sh: no target '$t'" >&2; exit 2; }
done

echo "run.sh: building ${#targets[@]} libFuzzer target(s) with $cc in $build" >&2
CC=$cc cmake -S "$repo" -B "$build" -DCQ_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCQ_WERROR=ON >/dev/null
mapfile -t build_targets < <(printf 'fuzz_%s_libfuzzer\n' "${targets[@]}")
cmake --build "$build" -j "${BUILD_JOBS:-2}" --target "${build_targets[@]}" >/dev/null

out=${OUT:-$(mktemp -d /tmp/cq-fuzz.XXXXXX)}
mkdir -p "$out"
budget=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
total_new=0
rows=()
for t in "${targets[@]}"; do
    exe=$build/tests/fuzz_${t}_libfuzzer
    seeds=$repo/tests/fuzz/corpus/$t
    work=$out/$t
    mkdir -p "$work/corpus" "$work/findings"
    cp "$seeds"/* "$work/corpus/"
    log=$work/fuzz.log
    : >"$log"
    echo "run.sh: $t for $minutes min (log $log)" >&2
    # libFuzzer stops at the first finding: start it again for what is left of the budget, so
    # one crash does not end the target's run (each run keeps the corpus it grew).
    known=$(sha1sum "$seeds"/* | awk '{ print $1 }')
    start=$(date +%s)
    runs=0
    while :; do
        left=$((budget - ($(date +%s) - start)))
        [[ $left -gt 0 && $runs -lt 50 ]] || break
        runs=$((runs + 1))
        # stdin from /dev/null: the config target's `file:` secrets may name /dev/stdin
        "$exe" -max_total_time="$left" -rss_limit_mb="${RSS_MB:-2048}" \
            -max_len="${MAX_LEN:-4096}" -timeout="${TIMEOUT_S:-10}" -print_final_stats=1 \
            -artifact_prefix="$work/findings/" "$work/corpus" </dev/null >>"$log" 2>&1 || true
        # a seed that fails stops every run at once: no use starting again
        for f in "$work"/findings/*; do
            [[ -f $f ]] && grep -qx "$(sha1sum "$f" | awk '{ print $1 }')" <<<"$known" && break 2
        done
    done
    execs=$(awk '/stat::number_of_executed_units:/ { s += $2 } END { print s + 0 }' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{ print $2 }' || true)
    grown=$(($(find "$work/corpus" -maxdepth 1 -type f | wc -l) - $(find "$seeds" -maxdepth 1 -type f | wc -l)))
    # a finding is new unless its bytes are already a seed (crash-* seeds are fixed findings);
    # a seed that fails again is a regression (ctest's fuzz.NAME replay fails on it too)
    new=()
    again=0
    for f in "$work"/findings/*; do
        [[ -f $f ]] || continue
        sum=$(sha1sum "$f" | awk '{ print $1 }')
        if grep -qx "$sum" <<<"$known"; then again=$((again + 1)); else new+=("$f"); fi
    done
    total_new=$((total_new + ${#new[@]} + again))
    rows+=("$(printf '%-14s %6s min %12s runs  cov %-6s +%-5s inputs  %d new finding(s)%s' \
        "$t" "$minutes" "$execs" "${cov:-?}" "$grown" "${#new[@]}" \
        "$([[ $again -gt 0 ]] && echo ", a seed fails again ($again run(s)): regression")")")
    for f in "${new[@]}"; do
        # the last error line libFuzzer printed before it wrote this file
        # (the first specific one: "deadly signal" only follows the contract's abort)
        why=$(awk -v f="$f" '
            /FUZZ CONTRACT VIOLATED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error/ {
                if (w == "" || $0 !~ /deadly signal/) w = $0 }
            /Test unit written to / { if (index($0, f)) { print w; exit } w = "" }' "$log")
        rows+=("    $f${why:+  ($why)}")
    done
done

echo
echo "fuzz: $minutes min per target, results in $out"
printf '%s\n' "${rows[@]}"
if [[ $total_new -gt 0 ]]; then
    echo "fuzz: $total_new finding(s): replay with build/tests/fuzz_NAME FILE, fix, then add" \
        "the file to tests/fuzz/corpus/NAME/ as crash-<what> (tests/fuzz/README.md)"
    exit 1
fi
echo "fuzz: no new findings"
