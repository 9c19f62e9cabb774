#!/usr/bin/env bash
# vs-test: serial
# (serial: testpmd busy-polls a CPU for most of the run; counts are read against time limits.)
# The native memif code (ffi/memif, no DPDK) against DPDK's net_memif in dpdk-testpmd,
# through the crate's example peer (ffi/memif/examples/memif_peer.rs):
#   (a) our server (2 queues) <-> testpmd client (io forwarding, 2 queues): frames we send
#       are received by testpmd and come back to us; the counts agree both ways;
#   (b) our client (jumbo 9000-byte frames, descriptor chains) <-> testpmd server;
#   (c) restarts: testpmd restarted behind our client and in front of our server, our
#       client restarted in front of the testpmd server: traffic resumes each time;
#   (d) a malformed peer (ci/memif_bad_peer.py: bad region size, ring outside the region,
#       descriptor outside the region then a runaway head) is refused with a logged reason,
#       counted, and our server keeps running and serves a correct peer afterwards.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

VS_TEST_NAME="66-memif-interop"
# Not vs_test_init: this test needs no vswitchd, only the memif example.
((EUID == 0)) || fail "must run as root (DPDK)"
command -v dpdk-testpmd >/dev/null || fail "dpdk-testpmd missing (apt-get install dpdk)"
vs_test_tmp

PEER=$VS_BIN_DIR/examples/memif_peer
# (Built by ci/setup.sh.)
[[ -x "$PEER" ]] || fail "$PEER missing: run 'bash ci/setup.sh' (it builds the memif_peer example)"
CPU=$(($(nproc) - 1))

# start_peer NAME ARGS...: our example peer, its log in $VS_TMP/NAME.log; sets PEER_PID.
PEER_PID=""
start_peer() {
    local name=$1
    shift
    VS_LOGS+=("$VS_TMP/$name.log")
    "$PEER" "$@" >"$VS_TMP/$name.log" 2>&1 &
    PEER_PID=$!
    vs_track_pid "$PEER_PID"
    log "memif_peer $name: $* (pid $PEER_PID)"
}

# pstat NAME KEY: KEY from the last status line of peer NAME (0 before the first).
pstat() {
    local v
    v=$(awk -v key="$2" '/^status / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) v = kv[2] } }
        END { print v + 0 }' "$VS_TMP/$1.log")
    printf '%s\n' "$v"
}
stat_ge() { (($(pstat "$1" "$2") >= $3)); }
is_down() { (($(pstat "$1" up) == 0)); }

# start_tp NAME VDEV [TESTPMD ARGS...]: testpmd in io mode with its own file prefix;
# sets TP_PID, TP_LOG.
TP_PID="" TP_LOG=""
start_tp() {
    local name=$1 vdev=$2 prefix="${VS_TAG}$1"
    shift 2
    TP_LOG=$VS_TMP/testpmd-$name.log
    VS_PREFIXES+=("$prefix")
    VS_LOGS+=("$TP_LOG")
    stdbuf -oL -eL dpdk-testpmd --no-huge -m 512 --no-pci --file-prefix "$prefix" \
        --lcores "0@$CPU,1@$CPU" --vdev "$vdev" -- \
        --forward-mode=io --stats-period 1 --total-num-mbufs 8192 "$@" \
        </dev/null >"$TP_LOG" 2>&1 &
    TP_PID=$!
    vs_track_pid "$TP_PID"
    wait_until 20 "testpmd $name running" grep -q 'Port statistics' "$TP_LOG"
    log "testpmd $name: $vdev $* (pid $TP_PID)"
}

# tp_rx LOG: testpmd's latest port-0 RX-packets (its periodic statistics).
tp_rx() { awk '/RX-packets:/ { v = $2 } END { print v + 0 }' "$1"; }
tp_rx_ge() { (($(tp_rx "$1") >= $2)); }

stop_tp() { vs_stop_pid "$1" INT 20; }

# ---------------------------------------------------------------------------------------
# (a) our server, testpmd client, 2 queues
sa=$VS_TMP/a.sock
start_peer srv-a server "$sa" 0 2 send 0 --size 1000 --pps 20000
srv_a=$PEER_PID
wait_until 10 "socket $sa" test -S "$sa"
assert_eq "$(stat -c %a "$sa")" 660 "mode of $sa"
start_tp a "net_memif0,role=client,socket=$sa,socket-abstract=no,id=0" --rxq=2 --txq=2
tp_a=$TP_PID tp_a_log=$TP_LOG
wait_until 15 "(a) 5000 frames back from testpmd" stat_ge srv-a rx 5000
wait_until 5 "(a) testpmd counted 5000" tp_rx_ge "$tp_a_log" 5000
log "(a) our server: tx $(pstat srv-a tx) rx $(pstat srv-a rx); testpmd client rx $(tp_rx "$tp_a_log")"
assert_eq "$(pstat srv-a bad_desc) $(pstat srv-a ring_broken) $(pstat srv-a refused)" "0 0 0" \
    "(a) bad_desc ring_broken refused"

# (c, part) testpmd restarted in front of our server: it reconnects, traffic resumes.
stop_tp "$tp_a"
wait_until 10 "(a) link down after testpmd left" is_down srv-a
# Every frame testpmd sent back was in our rx ring before it closed; at most a ring per
# queue (2 x 1024) may have been unread when the link went down.
tp_tx=$(testpmd_fwd_stat "$tp_a_log" 0 TX-packets)
tp_rx=$(testpmd_fwd_stat "$tp_a_log" 0 RX-packets)
our_rx=$(pstat srv-a rx) our_tx=$(pstat srv-a tx)
log "(a) final: we sent $our_tx, testpmd received $tp_rx and sent back $tp_tx, we received $our_rx"
((tp_tx - our_rx >= 0 && tp_tx - our_rx <= 2048)) ||
    fail "(a) testpmd sent $tp_tx frames back, we received $our_rx"
((our_tx - tp_rx >= 0 && our_tx - tp_rx <= 2048)) ||
    fail "(a) we sent $our_tx frames, testpmd received $tp_rx"
before=$(pstat srv-a rx)
start_tp a2 "net_memif0,role=client,socket=$sa,socket-abstract=no,id=0" --rxq=2 --txq=2
tp_a=$TP_PID
wait_until 15 "(c) traffic resumes with the new testpmd client" stat_ge srv-a rx $((before + 5000))
log "(c) new testpmd client: our server rx $before -> $(pstat srv-a rx), links $(pstat srv-a links)"
stop_tp "$tp_a"
vs_stop_pid "$srv_a" TERM 10

# ---------------------------------------------------------------------------------------
# (b) our client, testpmd server, jumbo frames (9000 bytes: 5 descriptors of 2048 each way)
sb=$VS_TMP/b.sock
start_tp b "net_memif0,role=server,socket=$sb,socket-abstract=no,id=0"
tp_b=$TP_PID tp_b_log=$TP_LOG
start_peer cli-b client "$sb" 0 1 send 0 --size 9000 --pps 10000
cli_b=$PEER_PID
wait_until 15 "(b) 3000 jumbo frames back" stat_ge cli-b rx 3000
wait_until 5 "(b) testpmd counted 3000" tp_rx_ge "$tp_b_log" 3000
log "(b) our client: tx $(pstat cli-b tx) rx $(pstat cli-b rx); testpmd server rx $(tp_rx "$tp_b_log")"
assert_eq "$(pstat cli-b bad_desc) $(pstat cli-b too_long)" "0 0" "(b) bad_desc too_long"

# (c) testpmd server restarted behind our client: the client reconnects by itself.
stop_tp "$tp_b"
wait_until 10 "(c) client sees the link down" is_down cli-b
before=$(pstat cli-b rx)
start_tp b2 "net_memif0,role=server,socket=$sb,socket-abstract=no,id=0"
tp_b=$TP_PID tp_b_log=$TP_LOG
wait_until 15 "(c) traffic resumes after testpmd's restart" stat_ge cli-b rx $((before + 3000))
log "(c) testpmd server restarted: our client rx $before -> $(pstat cli-b rx), links $(pstat cli-b links)"

# (c) our client killed and restarted: testpmd takes the new connection.
vs_stop_pid "$cli_b" KILL 5
start_peer cli-b2 client "$sb" 0 1 send 0 --size 9000 --pps 10000
wait_until 15 "(c) traffic resumes after our client's restart" stat_ge cli-b2 rx 3000
log "(c) our client restarted: rx $(pstat cli-b2 rx)"
stop_tp "$tp_b"

# ---------------------------------------------------------------------------------------
# (d) malformed peers against our server
sd=$VS_TMP/d.sock
start_peer srv-d server "$sd" 0 1 count
srv_d=$PEER_PID
wait_until 10 "socket $sd" test -S "$sd"
for c in bad-region bad-ring bad-desc; do
    out=$("$VS_PY" "$VS_ROOT/ci/memif_bad_peer.py" "$sd" 0 "$c" 2>&1) ||
        fail "(d) $c was not refused as it should be: $out"
    log "(d) $c: ${out//$'\n'/; }"
done
wait_until 5 "(d) counters" stat_ge srv-d ring_broken 1
vs_alive "$srv_d" || fail "(d) our server died"
assert_eq "$(pstat srv-d refused) $(pstat srv-d bad_desc) $(pstat srv-d rx)" "3 1 1" \
    "(d) refused, bad_desc, rx (the good frame between the bad ones)"
for why in "its file holds" "outside region" "ring broken"; do
    grep -q "refused the peer: .*$why" "$VS_TMP/srv-d.log" || fail "(d) no log line for: $why"
done
start_peer cli-d client "$sd" 0 1 send 0 --pps 20000
wait_until 10 "(d) a correct peer after the bad ones" stat_ge srv-d rx 1000
log "(d) after 3 refusals our server took a correct client: rx $(pstat srv-d rx)"
vs_pass
