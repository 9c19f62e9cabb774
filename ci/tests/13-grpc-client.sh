#!/usr/bin/env bash
# An independent client drives the whole vswitch.v1 API: Python grpcio with code generated
# from proto/ at test time (ci/grpc/vsgrpc.py), no vsctl:
#   - create, get, list, change and delete every resource kind (interfaces of the types that
#     need no hardware, cross-connects, bridges and members, static and learned MAC entries),
#     plus Health, ListWorkers, GetDrops, ListMempools, grpc.health.v1 and reflection;
#   - INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS / FAILED_PRECONDITION where due, and a
#     failed call changes nothing (every List result is the same before and after);
#   - Transaction: a batch with one bad change fails with that change's code and changes
#     nothing; valid batches are applied whole (reply.applied == number of changes);
#   - restart on the same state file: every List result (configuration) is identical.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "13-grpc-client"
vs_grpc_init

# An af_packet interface on a veth (its peer, still down, is for sending frames in), a tap
# name (the switch makes the device; registered so that cleanup removes a leftover), and a
# Linux interface name that does not exist.
afp=$(vs_ifname ga)
peer=$(vs_ifname gb)
tap=$(vs_ifname gt)
missing=$(vs_ifname nx)
vs_veth_pair "$afp" "$peer"
VS_LINKS+=("$tap")
! ip link show dev "$missing" >/dev/null 2>&1 || fail "$missing exists; it must not"

start_vswitchd
crud() { grpc_py 180 crud.py --gen "$GEN" --target "unix:$VS_SOCK" "$@"; }

crud crud --afp "$afp" --afp-peer "$peer" --tap "$tap" --dir "$VS_TMP" ||
    fail "resource checks failed (see above)"
crud txn --missing-if "$missing" || fail "Transaction checks failed (see above)"

# Restart on the same socket, state file, run dir and DPDK prefix.
crud configure --afp "$afp" --tap "$tap" --dir "$VS_TMP" || fail "configuration failed"
crud snapshot --out "$VS_TMP/before-restart.json" || fail "snapshot failed"
stop_vswitchd
[[ -s "$VS_STATE" ]] || fail "no state file at $VS_STATE after SIGTERM"
log "restarting vswitchd on $VS_STATE"
VSWITCHD_LOG=$VS_TMP/vswitchd-restarted.log
VS_LOGS+=("$VSWITCHD_LOG")
"$VSWITCHD_BIN" --socket "$VS_SOCK" --state-file "$VS_STATE" --run-dir "$VS_RUN" \
    --file-prefix "$VS_PREFIX" --no-huge --poll adaptive --lcores 0,1 --workers 1 \
    </dev/null >"$VSWITCHD_LOG" 2>&1 &
VSWITCHD_PID=$!
vs_track_pid "$VSWITCHD_PID"
crud wait --seconds 20 || fail "restarted vswitchd (pid $VSWITCHD_PID) does not answer Health"
log "vswitchd pid $VSWITCHD_PID ready again"
crud compare --before "$VS_TMP/before-restart.json" ||
    fail "configuration after the restart differs (see above)"

# A client that never finishes its call cannot hold the stop: the calls in progress get 5 s
# (STOP_GRACE), then their connections are closed and vswitchd exits 0.
"$VS_PY" -B "$(dirname "$0")/../grpc/hold_call.py" "$VS_SOCK" /vswitch.v1.Vswitch/ListInterfaces \
    >"$VS_TMP/hold.log" 2>&1 &
HOLD_PID=$!
vs_track_pid "$HOLD_PID"
wait_until 10 "the holding client started its call" grep -q holding "$VS_TMP/hold.log"
stop_vswitchd
grep -q "calls still in progress 5 s after the stop signal" "$VSWITCHD_LOG" ||
    fail "vswitchd did not say it closed the held call's connection"
wait_until 5 "the held connection closed by vswitchd" grep -q "closed by the server" "$VS_TMP/hold.log"
vs_stop_pid "$HOLD_PID" TERM 5
log "a call never finished did not hold the stop (closed after the 5 s grace, exit 0)"
vs_pass
