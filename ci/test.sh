#!/usr/bin/env bash
# ci/test.sh: THE test command (README quick start, .ci/run).
#
#   1. ci/setup.sh: apt packages and the release build;
#   2. cargo test --workspace --release --no-fail-fast: unit tests (every test binary runs,
#      so the count below is complete even when one fails);
#   3. every ci/tests/*.sh, each bounded by a timeout, its output captured and shown when it
#      fails. Scripts are independent (own daemon, socket, DPDK file prefix, namespaces and
#      links named after their PID), so they run VS_JOBS at a time; a script whose checks
#      are timing-sensitive says so with a `# vs-test: serial` line in its first lines and
#      runs alone, after the others.
# The last line is "N passed, N failed": every unit test that cargo ran plus every
# integration script (a `cargo test` that fails without reporting a failed test, e.g. one
# that does not compile, counts as one failure). The exit code is non-zero if anything
# (set-up, unit tests or an integration script) failed.
#
# Environment: VS_TEST_TIMEOUT (seconds per integration script, default 400),
#              VS_TESTS (space-separated subset of ci/tests/*.sh to run),
#              VS_JOBS (integration scripts run at once, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
source ci/lib.sh

TIMEOUT=${VS_TEST_TIMEOUT:-400}
JOBS=${VS_JOBS:-3}
start=$SECONDS
if [[ -n "${VS_TESTS:-}" ]]; then
    read -r -a tests <<<"$VS_TESTS"
else
    tests=(ci/tests/[0-9]*.sh)
fi
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "ci/test.sh: VS_JOBS must be an integer >= 1" >&2; exit 2; }

banner() { printf '\n==== %s ====\n' "$*"; }

if ((EUID != 0)); then
    echo "ci/test.sh: run as root (sudo bash ci/test.sh)" >&2
    echo "0 passed, ${#tests[@]} failed"
    exit 1
fi

banner "set-up and build (ci/setup.sh)"
if ! bash ci/setup.sh; then
    echo "ci/test.sh: set-up or build failed; no test can run" >&2
    echo "0 passed, $((${#tests[@]} + 1)) failed"
    exit 1
fi
vs_find_cargo || true

# shellcheck source=ci/runner.sh
source ci/runner.sh

banner "unit tests (cargo test --workspace --release)"
unit_log=$(mktemp /tmp/vswitch-unit.XXXXXX)
unit_rc=0
cargo test --workspace --release --no-fail-fast 2>&1 | tee "$unit_log" || unit_rc=$?
unit_counts "$unit_log" "$unit_rc"
rm -f "$unit_log"

for t in "${tests[@]}"; do
    [[ -f "$t" ]] || { echo "ci/test.sh: no such test script: $t" >&2; exit 2; }
done
banner "integration tests"
RUN_JOBS=$JOBS RUN_TIMEOUT=$TIMEOUT
run_scripts "${tests[@]}"

banner "summary"
if ((unit_rc == 0 && UNIT_FAILED == 0)); then
    echo "unit tests: $UNIT_PASSED passed"
else
    echo "unit tests: FAILED ($UNIT_PASSED passed, $UNIT_FAILED failed, cargo exit $unit_rc)"
fi
((RUN_FAILED == 0)) || echo "failed scripts: ${RUN_FAILED_NAMES[*]}"
echo "integration scripts: $RUN_PASSED passed, $RUN_FAILED failed"
echo "wall time: $((SECONDS - start))s"
echo "$((UNIT_PASSED + RUN_PASSED)) passed, $((UNIT_FAILED + RUN_FAILED)) failed"
((RUN_FAILED == 0 && UNIT_FAILED == 0 && unit_rc == 0)) || exit 1
