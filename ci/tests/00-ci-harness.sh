#!/usr/bin/env bash
# The harness's checks can fail (issue #9). No vswitchd: two namespaces joined by a plain
# veth pair, scapy sending from A, a capture (ci/scapy/sniff.py) in B.
#   (a) ci/check.py selftest passes;
#   (b) a frame that a "must not appear" check is about, sent on purpose: the "-eq 0" check
#       fails, the positive control "-ge 1" passes, and a shell value with quotes in it is
#       data, not code;
#   (c) a frame l2common.summary() cannot describe (an ARP header cut short after 10 of its
#       28 bytes, sent for real with send.py --truncate 24; scapy itself turns it into Raw
#       without a word, which the old summary() reported as kind "other" with no ARP
#       fields): the capture records it as an error and both a "-eq 0" and a "-ge 1" check
#       on that capture fail;
#   (d) broken expressions (KeyError on every frame, a syntax error) fail a check whose
#       count condition (-ge 0) holds for any count; vs_json / vs_json_true on a broken
#       expression or a document that is not JSON fail too.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "00-ci-harness"
l2_need_scapy

# must_fail WHAT CMD...: CMD (a check that calls fail or returns non-zero) must fail. It
# runs in a subshell (a check's fail ends only that); its complaint is shown, indented.
NEGATIVE=0
must_fail() {
    local what=$1 rc=0 out line
    shift
    out=$( ("$@") 2>&1) || rc=$?
    ((rc != 0)) || fail "$what: the check passed; it must fail. Its output: $out"
    log "$what: fails as it must (exit $rc):"
    while IFS= read -r line; do printf '        | %s\n' "$line"; done <<<"$out"
    NEGATIVE=$((NEGATIVE + 1))
}

# (a) check.py's own tests.
run_ok "check.py selftest" "$VS_PY" -B "$VS_CHECK" selftest

# Two namespaces, eth0 in each, the ends of one veth pair; no addresses, IPv6 off: nothing
# but the frames sent here crosses it.
nsa=$(vs_ifname a)
nsb=$(vs_ifname b)
vs_netns_add "$nsa"
vs_netns_add "$nsb"
ip -n "$nsa" link add eth0 type veth peer name eth0 netns "$nsb" ||
    fail "cannot create veth $nsa/eth0 <-> $nsb/eth0"
for ns in "$nsa" "$nsb"; do
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || fail "ethtool -K eth0 tx off in $ns"
    ip -n "$ns" link set eth0 up
done
mac_a=$(ns_mac "$nsa")
carrier() { [[ "$(ip netns exec "$1" cat /sys/class/net/eth0/carrier 2>/dev/null)" == 1 ]]; }
wait_until 10 "eth0 in $nsa up" carrier "$nsa"
wait_until 10 "eth0 in $nsb up" carrier "$nsb"

# (b) A deliberately leaked frame.
LEAK=02:00:5e:00:00:1e
sniff_start leak "$nsb"
sniff_ready leak
run_ok "send one frame to $LEAK from $nsa" \
    l2_scapy "$nsa" 30 send.py --src "$mac_a" --dst "$LEAK" --text leaked-on-purpose >/dev/null
TO='mac(f["dst"]) == mac(m)'
wait_until 10 "the leaked frame captured in $nsb" sniff_seen leak 1 "$TO" m="$LEAK"
sniff_stop leak
must_fail "(b) 'no frame to $LEAK' with one there" \
    sniff_expect leak -eq 0 "$TO" "frames to $LEAK (must not appear)" m="$LEAK"
sniff_expect leak -ge 1 "$TO" "(b) positive control: frames to $LEAK" m="$LEAK"
sniff_expect leak -eq 1 'f["kind"] == "raw" and f["payload"] == text' \
    "(b) the frame's payload as sent" text=leaked-on-purpose
# A value with quotes is a string to compare with, not code ("' or True or '" pasted into
# the expression would make it match every frame).
sniff_expect leak -eq 0 "$TO" "(b) a quoted value is data: frames to it" m="' or True or '"

# (d) Broken expressions, on the same (good) capture: -ge 0 holds for any count, so only
# the error can make these fail.
must_fail "(d) an expression raising KeyError on every frame" \
    sniff_expect leak -ge 0 'f["no_such_key"] == 1' "frames with no_such_key"
must_fail "(d) an expression with a syntax error" \
    sniff_expect leak -ge 0 'f["dst"] ==' "frames with a syntax error"
must_fail "(d) vs_json on an expression raising KeyError" vs_json 'd["x"]' <<<'{"y": 1}'
must_fail "(d) vs_json on a document that is not JSON" vs_json 'd' <<<'{"y": '
rc=0
vs_json_true 'd["x"] == 1' <<<'{"y": 1}' 2>/dev/null || rc=$?
assert_eq "$rc" 2 "(d) vs_json_true status on an expression raising KeyError (2: broken)"
rc=0
vs_json_true 'd["y"] == 2' <<<'{"y": 1}' || rc=$?
assert_eq "$rc" 1 "(d) vs_json_true status on a false expression (1)"
log "(d) vs_json_true: 2 for a broken expression, 1 for a false one"

# (c) A frame summary() cannot describe: ARP (EtherType 0x0806) cut after 10 bytes.
sniff_start bad "$nsb"
sniff_ready bad
run_ok "send an ARP cut to 24 bytes to $LEAK from $nsa" \
    l2_scapy "$nsa" 30 send.py --kind arp --src "$mac_a" --dst "$LEAK" --psrc 10.0.0.1 \
    --pdst 10.0.0.2 --truncate 24 >/dev/null
bad_file=$VS_TMP/sniff-bad.jsonl
wait_until 10 "the cut frame captured in $nsb" grep -q . "$bad_file"
sniff_stop bad
log "(c) capture bad recorded: $(cat "$bad_file")"
vs_json_true '"error" in d and d["len"] == 24' <"$bad_file" ||
    fail "(c) capture bad should hold one error record of a 24-byte frame: $(cat "$bad_file")"
must_fail "(c) 'no frame to $LEAK' on a capture with an unparsable frame" \
    sniff_expect bad -eq 0 "$TO" "frames to $LEAK (must not appear)" m="$LEAK"
must_fail "(c) 'at least one frame' on a capture with an unparsable frame" \
    sniff_expect bad -ge 1 'True' "frames of any kind"
if sniff_seen bad 1 'True'; then
    fail "(c) sniff_seen holds on a capture with an unparsable frame"
fi
log "(c) sniff_seen (a wait_until condition) does not hold on it either"

assert_int -eq "$NEGATIVE" 7 "checks shown to fail"
log "$NEGATIVE checks failed as they must; the positive controls passed"
vs_pass
