# shellcheck shell=bash
# ci/runner.sh: how ci/test.sh counts unit tests and runs the integration scripts, as
# functions, so that ci/tests/00-test-runner.sh can check the counting and the scheduling
# on small inputs without a build.
#
#   unit_counts LOG RC          sets UNIT_PASSED, UNIT_FAILED from cargo test's output LOG
#                               and exit code RC
#   run_scripts SCRIPT...       runs the scripts (RUN_JOBS at a time, `# vs-test: serial`
#                               ones alone afterwards, each bounded by RUN_TIMEOUT seconds),
#                               prints PASS/FAIL lines; sets RUN_PASSED, RUN_FAILED and
#                               RUN_FAILED_NAMES

# unit_counts LOG RC: every "test result: ..." line of LOG is added up. A cargo that failed
# (RC != 0) without reporting a failed test (a build error, a test binary that crashed)
# counts as one failure, so the closing line never reads all-passed after it.
UNIT_PASSED=0 UNIT_FAILED=0
unit_counts() {
    local log=$1 rc=$2
    read -r UNIT_PASSED UNIT_FAILED < <(awk '
        /^test result: / {
            for (i = 1; i < NF; i++) {
                if ($(i + 1) ~ /^passed;?$/) p += $i
                if ($(i + 1) ~ /^failed;?$/) f += $i
            }
        }
        END { print p + 0, f + 0 }' "$log")
    if ((rc != 0 && UNIT_FAILED == 0)); then
        UNIT_FAILED=1
    fi
}

RUN_JOBS=${RUN_JOBS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-400}
RUN_PASSED=0 RUN_FAILED=0
RUN_FAILED_NAMES=()
declare -A RUN_PIDS=() RUN_T0=()
RUN_LOGDIR=""

# run_launch SCRIPT: start it in the background, in a network namespace of its own, under
# timeout, which runs it in a process group of its own and signals that whole group (its
# daemons and peers too) when the time is up; -k: SIGKILL if the script ignores SIGTERM for
# 30 s. Its EXIT trap cleans up what it made; run_reap removes the namespace.
#
# Why a namespace per script: what a script makes in "the host" (the switch's ends of its
# veth pairs, the taps the switch creates, TCP listeners on 127.0.0.1) is then its own.
# Scripts side by side in one namespace collide in ways no naming avoids: DPDK 22.11's
# af_packet driver joins PACKET_FANOUT group (getpid() ^ ifindex) & 0xffff, and two switches
# whose PIDs and interface indexes are close land on one id and fail with EINVAL (seen in a
# parallel run of 05). Fanout ids, like ifindexes, are per network namespace.
RUN_SEQ=0
declare -A RUN_NETNS=()
run_launch() {
    local t=$1 ns
    RUN_SEQ=$((RUN_SEQ + 1))
    ns="vsrun$$-$RUN_SEQ"
    ip netns add "$ns" && ip -n "$ns" link set lo up || {
        echo "ci/runner.sh: cannot create network namespace $ns for $t" >&2
        return 1
    }
    # The first namespace, for the few settings that exist only there (VS_INIT_NETNS).
    VS_INIT_NETNS=/proc/$$/ns/net timeout -k 30 "$RUN_TIMEOUT" ip netns exec "$ns" bash "$t" </dev/null \
        >"$RUN_LOGDIR/$(basename "$t" .sh).log" 2>&1 &
    RUN_PIDS[$!]=$t
    RUN_T0[$!]=$SECONDS
    RUN_NETNS[$!]=$ns
}

# run_reap: wait for any running script to end and report it.
run_reap() {
    local pid rc=0 t name dt why
    wait -n -p pid "${!RUN_PIDS[@]}" || rc=$?
    t=${RUN_PIDS[$pid]}
    name=$(basename "$t" .sh)
    dt=$((SECONDS - RUN_T0[$pid]))
    ip netns del "${RUN_NETNS[$pid]}" 2>/dev/null || true
    unset "RUN_PIDS[$pid]" "RUN_T0[$pid]" "RUN_NETNS[$pid]"
    if ((rc == 0)); then
        RUN_PASSED=$((RUN_PASSED + 1))
        printf 'PASS  %-28s %4ss\n' "$name" "$dt"
    else
        RUN_FAILED=$((RUN_FAILED + 1))
        RUN_FAILED_NAMES+=("$name")
        why="exit $rc"
        if ((rc == 124 || rc == 137)); then why="timed out after ${RUN_TIMEOUT}s"; fi
        printf 'FAIL  %-28s %4ss  (%s)\n' "$name" "$dt" "$why"
        printf -- '---- output of %s ----\n' "$t"
        cat "$RUN_LOGDIR/$name.log"
        printf -- '---- end of %s ----\n' "$t"
    fi
}

# run_is_serial SCRIPT: true if one of its first 5 lines is "# vs-test: serial".
run_is_serial() { head -n 5 "$1" | grep -q '^# vs-test: serial'; }

run_scripts() {
    local t parallel=() serial=()
    for t in "$@"; do
        if run_is_serial "$t"; then serial+=("$t"); else parallel+=("$t"); fi
    done
    RUN_LOGDIR=$(mktemp -d /tmp/vswitch-ci.XXXXXX)
    printf '%d scripts, %d at a time; then %d alone; %ss each at most\n' \
        "${#parallel[@]}" "$RUN_JOBS" "${#serial[@]}" "$RUN_TIMEOUT"
    for t in "${parallel[@]}"; do
        while ((${#RUN_PIDS[@]} >= RUN_JOBS)); do run_reap; done
        run_launch "$t"
    done
    while ((${#RUN_PIDS[@]} > 0)); do run_reap; done
    for t in "${serial[@]}"; do
        run_launch "$t"
        run_reap
    done
    rm -rf "$RUN_LOGDIR"
}
