# shellcheck shell=bash
# perf/proc.sh: process helpers shared by perf/veth.sh and perf/iface-scale.sh (sourced; each
# defines log() first).

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z* ]]
}

# stop_pid PID SIGNAL SECONDS: signal, wait, SIGKILL after SECONDS, reap; STOP_RC is its
# exit code.
STOP_RC=0
# shellcheck disable=SC2034 # STOP_RC is read by the scripts that source this
stop_pid() {
    local pid=$1 sig=$2 secs=$3 i
    if alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < secs * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "pid $pid ignored SIG$sig for ${secs}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    STOP_RC=0
    wait "$pid" 2>/dev/null || STOP_RC=$?
}
