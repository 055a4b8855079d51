#!/usr/bin/env bash
# lint.sh: the checks that need no build. Every tracked C file follows .clang-format
# (clang-format --dry-run -Werror) and every shell script passes shellcheck.
#   scripts/lint.sh          check (exit 1 and list what differs)
#   scripts/lint.sh --fix    rewrite the C files in place with clang-format
set -euo pipefail
CQ_PROG=lint.sh
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$CQ_REPO_ROOT"

mapfile -t c_files < <(git ls-files '*.c' '*.h')
mapfile -t sh_files < <(git ls-files '*.sh')
rc=0
if [[ "${1:-}" == "--fix" ]]; then
    clang-format -i "${c_files[@]}"
    exit 0
fi
if ! clang-format --dry-run -Werror "${c_files[@]}"; then
    cq_log "formatting differs from .clang-format: run scripts/lint.sh --fix"
    rc=1
fi
if ! shellcheck -x "${sh_files[@]}"; then
    cq_log "shellcheck found problems"
    rc=1
fi
[[ $rc -eq 0 ]] && cq_log "format and shellcheck clean (${#c_files[@]} C files, ${#sh_files[@]} scripts)"
exit "$rc"
