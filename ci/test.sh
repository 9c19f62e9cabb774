#!/usr/bin/env bash
# ci/test.sh: THE test command (README quick start, .ci/run).
#
#   1. ci/setup.sh: apt packages and the release build;
#   2. cargo test --workspace --release: unit tests;
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

# ---------------------------------------------------------------------------------------
# Unit tests: every "test result: ..." line cargo prints is added up.
banner "unit tests (cargo test --workspace --release)"
unit_log=$(mktemp /tmp/vswitch-unit.XXXXXX)
unit_rc=0
cargo test --workspace --release 2>&1 | tee "$unit_log" || unit_rc=$?
read -r unit_passed unit_failed < <(awk '
    /^test result: / {
        for (i = 1; i < NF; i++) {
            if ($(i + 1) ~ /^passed;?$/) p += $i
            if ($(i + 1) ~ /^failed;?$/) f += $i
        }
    }
    END { print p + 0, f + 0 }' "$unit_log")
rm -f "$unit_log"
if ((unit_rc != 0 && unit_failed == 0)); then
    # cargo failed before or beside the tests (a build error, a crashed test binary).
    unit_failed=1
fi
unit_ok=$((unit_rc == 0 && unit_failed == 0))

# ---------------------------------------------------------------------------------------
# Integration scripts
parallel=() serial=()
for t in "${tests[@]}"; do
    [[ -f "$t" ]] || { echo "ci/test.sh: no such test script: $t" >&2; exit 2; }
    if head -n 5 "$t" | grep -q '^# vs-test: serial'; then serial+=("$t"); else parallel+=("$t"); fi
done

logdir=$(mktemp -d /tmp/vswitch-ci.XXXXXX)
passed=0
failed=0
failed_names=()
declare -A running=() started=()

# launch SCRIPT: start it in the background under timeout, which runs it in a process group
# of its own and signals that whole group (its daemons and peers too) when the time is up;
# -k: SIGKILL if the script ignores SIGTERM for 30 s. Its EXIT trap cleans up.
launch() {
    local t=$1 name
    name=$(basename "$t" .sh)
    timeout -k 30 "$TIMEOUT" bash "$t" </dev/null >"$logdir/$name.log" 2>&1 &
    running[$!]=$t
    started[$!]=$SECONDS
}

# reap: wait for any running script to end and report it.
reap() {
    local pid rc=0 t name dt why
    wait -n -p pid "${!running[@]}" || rc=$?
    t=${running[$pid]}
    name=$(basename "$t" .sh)
    dt=$((SECONDS - started[$pid]))
    unset "running[$pid]" "started[$pid]"
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
}

banner "integration tests: ${#parallel[@]} scripts, $JOBS at a time; then ${#serial[@]} alone (${TIMEOUT}s each at most)"
for t in "${parallel[@]}"; do
    while ((${#running[@]} >= JOBS)); do reap; done
    launch "$t"
done
while ((${#running[@]} > 0)); do reap; done
for t in "${serial[@]}"; do
    launch "$t"
    reap
done
rm -rf "$logdir"

banner "summary"
if ((unit_ok)); then
    echo "unit tests: $unit_passed passed"
else
    echo "unit tests: FAILED ($unit_passed passed, $unit_failed failed, cargo exit $unit_rc)"
fi
((failed == 0)) || echo "failed scripts: ${failed_names[*]}"
echo "integration scripts: $passed passed, $failed failed"
echo "wall time: $((SECONDS - start))s"
echo "$((unit_passed + passed)) passed, $((unit_failed + failed)) failed"
((failed == 0 && unit_ok)) || exit 1
