#!/usr/bin/env bash
# ci/test.sh: THE test command (README quick start, .ci/run).
#
#   1. ci/setup.sh: apt packages and the release build;
#   2. cargo test --workspace --release: unit tests;
#   3. every ci/tests/*.sh, one at a time, each bounded by a timeout, its output captured
#      and shown when it fails.
# The last line is "N passed, N failed" over the integration scripts; the exit code is
# non-zero if anything (set-up, unit tests or an integration script) failed.
#
# Environment: VS_TEST_TIMEOUT (seconds per integration script, default 300),
#              VS_TESTS (space-separated subset of ci/tests/*.sh to run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
source ci/lib.sh

TIMEOUT=${VS_TEST_TIMEOUT:-300}
start=$SECONDS
if [[ -n "${VS_TESTS:-}" ]]; then
    read -r -a tests <<<"$VS_TESTS"
else
    tests=(ci/tests/[0-9]*.sh)
fi

banner() { printf '\n==== %s ====\n' "$*"; }

if ((EUID != 0)); then
    echo "ci/test.sh: run as root (sudo bash ci/test.sh)" >&2
    echo "0 passed, ${#tests[@]} failed"
    exit 1
fi

banner "set-up and build (ci/setup.sh)"
if ! bash ci/setup.sh; then
    echo "ci/test.sh: set-up or build failed; no test can run" >&2
    echo "0 passed, ${#tests[@]} failed"
    exit 1
fi
vs_find_cargo || true

banner "unit tests (cargo test --workspace --release)"
unit_ok=1
cargo test --workspace --release || unit_ok=0

banner "integration tests (${#tests[@]} scripts, ${TIMEOUT}s each at most)"
logdir=$(mktemp -d /tmp/vswitch-ci.XXXXXX)
passed=0
failed=0
failed_names=()
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    t0=$SECONDS
    rc=0
    # -k: if the script ignores SIGTERM for 30 s, SIGKILL. timeout signals the script's
    # whole process group, so its daemons and peers stop too; its EXIT trap cleans up.
    timeout -k 30 "$TIMEOUT" bash "$t" </dev/null >"$logdir/$name.log" 2>&1 || rc=$?
    dt=$((SECONDS - t0))
    if ((rc == 0)); then
        passed=$((passed + 1))
        printf 'PASS  %-28s %4ss\n' "$name" "$dt"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        why="exit $rc"
        ((rc == 124 || rc == 137)) && why="timed out after ${TIMEOUT}s"
        printf 'FAIL  %-28s %4ss  (%s)\n' "$name" "$dt" "$why"
        printf -- '---- output of %s ----\n' "$t"
        cat "$logdir/$name.log"
        printf -- '---- end of %s ----\n' "$t"
    fi
done
rm -rf "$logdir"

banner "summary"
if ((unit_ok)); then echo "unit tests: passed"; else echo "unit tests: FAILED"; fi
((failed == 0)) || echo "failed scripts: ${failed_names[*]}"
echo "wall time: $((SECONDS - start))s"
echo "$passed passed, $failed failed"
((failed == 0 && unit_ok)) || exit 1
