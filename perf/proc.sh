# shellcheck shell=bash
# perf/proc.sh: helpers shared by perf/veth.sh, perf/iface-scale.sh, perf/cni-add.sh and
# perf/bridge-rr-cpus.sh (sourced; each defines log() first).

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

# hold_cpu_latency US WHO: holds a PM QoS request of US µs (0-1000000) on
# /dev/cpu_dma_latency until this shell exits (what vswitchd --cpu-latency does). Written
# as a hex string: the kernel reads exactly four bytes as a binary s32, anything else as hex.
hold_cpu_latency() {
    local us=$1 who=$2
    [[ "$us" =~ ^[0-9]+$ ]] && ((us <= 1000000)) ||
        { echo "$who: --cpu-latency needs microseconds from 0 to 1000000" >&2; exit 2; }
    exec {LATENCY_FD}>/dev/cpu_dma_latency ||
        { echo "$who: cannot open /dev/cpu_dma_latency" >&2; exit 2; }
    printf '0x%08x' "$us" >&"$LATENCY_FD"
}

# idle_state: how this machine's idle CPUs wait, one line (cpuidle driver and governor,
# and haltpoll's guest_halt_poll_ns where that driver is loaded).
idle_state() {
    local d=/sys/devices/system/cpu/cpuidle p=/sys/module/haltpoll/parameters/guest_halt_poll_ns
    printf 'cpuidle driver %s, governor %s' "$(cat "$d/current_driver" 2>/dev/null || echo none)" \
        "$(cat "$d/current_governor" 2>/dev/null || cat "$d/current_governor_ro" 2>/dev/null || echo none)"
    [[ ! -r $p ]] || printf ', guest_halt_poll_ns %s' "$(cat "$p")"
    echo
}
