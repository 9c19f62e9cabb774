#!/usr/bin/env bash
# ci/test.sh's own bookkeeping (ci/runner.sh), on small inputs, without a build:
#   - unit tests are counted from cargo's "test result:" lines; a failed test, and a cargo
#     that fails without reporting one (a build error), make the closing count non-zero;
#   - integration scripts run RUN_JOBS at a time (two scripts that each wait for the other
#     to have started can only both pass if they overlap), each in a network namespace of
#     its own (not the runner's, not each other's), `# vs-test: serial` ones alone after
#     the others, failures and time-outs reported as FAIL with the script's output; no
#     namespace is left behind.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/runner.sh
source "$(dirname "$0")/../runner.sh"

vs_test_init "00-test-runner"

# ---------------------------------------------------------------------------------------
# Unit test counting
log_of() { printf '%s\n' "$@" >"$VS_TMP/cargo.log"; }

log_of "running 3 tests" "test a ... ok" "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s" \
    "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.20s"
unit_counts "$VS_TMP/cargo.log" 0
assert_eq "$UNIT_PASSED $UNIT_FAILED" "15 0" "two passing test binaries"

log_of "test result: ok. 3 passed; 0 failed; 0 ignored" \
    "test result: FAILED. 7 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
unit_counts "$VS_TMP/cargo.log" 101
assert_eq "$UNIT_PASSED $UNIT_FAILED" "10 2" "a binary with two failed tests"

log_of "error[E0425]: cannot find value \`x\` in this scope" \
    "error: could not compile \`vswitch-dataplane\` (lib test) due to 1 previous error"
unit_counts "$VS_TMP/cargo.log" 101
assert_eq "$UNIT_PASSED $UNIT_FAILED" "0 1" "a build error (no test result line)"

log_of "test result: ok. 5 passed; 0 failed; 0 ignored" "error: test failed, to rerun pass \`-p x --lib\`"
unit_counts "$VS_TMP/cargo.log" 101
assert_eq "$UNIT_PASSED $UNIT_FAILED" "5 1" "a test binary that crashed after others passed"
log "unit counting: ok, failed, build error and crash counted as expected"

# ---------------------------------------------------------------------------------------
# Scheduling
d=$VS_TMP/scripts
mkdir -p "$d"
# pa and pb each record that they started, then wait (bounded) for the other's start mark:
# both pass only if they run at the same time.
for me in pa pb; do
    other=pb
    [[ $me == pb ]] && other=pa
    cat >"$d/10-$me.sh" <<SH
#!/usr/bin/env bash
readlink /proc/self/ns/net >"$d/$me.netns"
touch "$d/$me.started"
for i in \$(seq 100); do [[ -e "$d/$other.started" ]] && break; sleep 0.1; done
[[ -e "$d/$other.started" ]] || { echo "$other never ran beside $me"; exit 1; }
touch "$d/$me.done"
SH
done
cat >"$d/20-fails.sh" <<SH
#!/usr/bin/env bash
echo "this script fails on purpose"
exit 3
SH
cat >"$d/30-serial.sh" <<SH
#!/usr/bin/env bash
# vs-test: serial
# Runs alone: everything else has finished when it starts.
[[ -e "$d/pa.done" && -e "$d/pb.done" && -e "$d/hang.ended" ]] || { echo "started beside others"; exit 1; }
SH
cat >"$d/40-hangs.sh" <<SH
#!/usr/bin/env bash
trap 'touch "$d/hang.ended"; exit 143' TERM
sleep 60 &
wait
SH

RUN_JOBS=4 RUN_TIMEOUT=3
netns_before=$(ip netns list | grep -c "^vsrun$$-" || true)
run_scripts "$d"/*.sh >"$VS_TMP/run.log"
out=$(cat "$VS_TMP/run.log")
printf '%s\n' "$out"
assert_eq "$RUN_PASSED $RUN_FAILED" "3 2" "scripts passed / failed"
assert_eq "${RUN_FAILED_NAMES[*]}" "20-fails 40-hangs" "failed scripts"
grep -q '^PASS  10-pa ' <<<"$out" || fail "10-pa did not pass beside 10-pb"
grep -q '^PASS  10-pb ' <<<"$out" || fail "10-pb did not pass beside 10-pa"
grep -q '^PASS  30-serial ' <<<"$out" || fail "the serial script did not run alone"
grep -q '^FAIL  20-fails .*(exit 3)' <<<"$out" || fail "a failing script is not reported with its exit code"
grep -q 'this script fails on purpose' <<<"$out" || fail "a failing script's output is not shown"
grep -q '^FAIL  40-hangs .*(timed out after 3s)' <<<"$out" || fail "a hanging script is not reported as timed out"
[[ "$(tail -n 1 <<<"$out")" == "PASS  30-serial"* ]] || fail "the serial script did not run last"
mine=$(readlink /proc/self/ns/net)
na=$(cat "$d/pa.netns") nb=$(cat "$d/pb.netns")
[[ "$na" != "$nb" && "$na" != "$mine" && "$nb" != "$mine" ]] ||
    fail "scripts did not get network namespaces of their own (runner $mine, pa $na, pb $nb)"
assert_eq "$(ip netns list | grep -c "^vsrun$$-" || true)" "$netns_before" "namespaces left by the runner"
log "scheduling: parallel pair overlapped, serial script ran alone and last, failure and time-out reported"

vs_pass
