# shellcheck shell=bash
# ci/l2lib.sh: helpers for the L2 bridge tests (ci/tests/07-10), sourced after ci/lib.sh.
#
# Usage in a test:
#   source "$(dirname "$0")/../lib.sh"
#   source "$(dirname "$0")/../l2lib.sh"
#   vs_test_init "l2-..."
#   l2_need_scapy                       # only tests that run ci/scapy/*.py
#   start_vswitchd
#   l2_host "$(vs_ifname a)" pa 10.98.7.1/24    # namespace + veth + af_packet iface pa
#
# Every helper that is used as a wait_until condition (fdb_has, fdb_lacks, sniff_seen, ...)
# only returns a status: it never calls fail, so a failed read just means "not yet".

VS_SCAPY_DIR=$VS_ROOT/ci/scapy

# l2_need_scapy: $VS_PY (Debian's python3, lib.sh) must import scapy.
l2_need_scapy() {
    "$VS_PY" -c 'import scapy.layers.l2' >/dev/null 2>&1 ||
        fail "python3-scapy is missing (apt-get install python3-scapy, or bash ci/setup.sh)"
    log "scapy: $("$VS_PY" -c 'import scapy; print(scapy.VERSION)') ($VS_PY)"
}

# l2_scapy NS SECONDS SCRIPT ARGS...: run ci/scapy/SCRIPT in NS, bounded in time.
l2_scapy() {
    local ns=$1 secs=$2 script=$3
    shift 3
    timeout -k 5 "$secs" ip netns exec "$ns" "$VS_PY" "$VS_SCAPY_DIR/$script" "$@"
}

# ---------------------------------------------------------------------------------------
# Hosts

# l2_host NS VSIF CIDR: a host (vs_host, lib.sh) in namespace NS, which must be a
# vs_ifname name, with eth0 at CIDR (no address when CIDR is empty); its veth's host end
# becomes the af_packet interface VSIF of the switch.
l2_host() {
    local ns=$1 vsif=$2 cidr=$3
    [[ "$ns" == "$VS_TAG"?* ]] || fail "l2_host: $ns is not a vs_ifname name"
    vs_host "${ns#"$VS_TAG"}" "$cidr"
    run_ok "iface add $vsif af_packet iface=$VS_HOSTIF" \
        vsctl iface add "$vsif" af_packet iface="$VS_HOSTIF" >/dev/null
}

# l2_named_host NAME CIDR: l2_host in namespace $(vs_ifname NAME) with switch port pNAME;
# records the namespace in NS[NAME] and eth0's MAC in MAC[NAME] (associative arrays the
# test declares: `declare -A NS MAC`).
l2_named_host() {
    NS[$1]=$(vs_ifname "$1")
    l2_host "${NS[$1]}" "p$1" "$2"
    MAC[$1]=$(ns_mac "${NS[$1]}")
    log "host $1: namespace ${NS[$1]}, ${2:-no address}, MAC ${MAC[$1]}, switch port p$1"
}

# ns_mac NS [IF]: the MAC address of IF (default eth0) inside NS, lowercase.
ns_mac() {
    local mac
    mac=$(ip -n "$1" link show dev "${2:-eth0}" | awk '/link\/ether/ { print tolower($2) }')
    [[ "$mac" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || fail "no MAC for ${2:-eth0} in $1"
    printf '%s\n' "$mac"
}

# ns_set_mac NS MAC: give eth0 in NS a new MAC (down, set, up; addresses and routes stay).
ns_set_mac() {
    ip -n "$1" link set eth0 down
    ip -n "$1" link set eth0 address "$2" || fail "cannot set MAC $2 on eth0 in $1"
    ip -n "$1" link set eth0 up
}

# ns_neigh_flush NS...: forget every ARP entry, so the next ping starts with a broadcast.
ns_neigh_flush() {
    local ns
    for ns in "$@"; do
        ip -n "$ns" neigh flush all >/dev/null 2>&1 || true
    done
}

# ping_fails NS DST: DST must not answer (3 echo requests, 1 s each, all lost).
ping_fails() {
    local out
    if out=$(ip netns exec "$1" ping -c 3 -i 0.3 -W 1 "$2" 2>&1); then
        printf '%s\n' "$out" >&2
        fail "ping $1 -> $2 succeeded; it must not"
    fi
    log "ping $1 -> $2: no reply, as required"
}

# ---------------------------------------------------------------------------------------
# JSON checks that return a status (for wait_until) instead of failing

# json_true EXPR [NAME=VALUE ...]: vs_json_true (lib.sh) with its complaint kept off the
# test's output: exit 0 if EXPR holds for the document on stdin, 1 if not, 2 if broken.
json_true() { vs_json_true "$@" 2>/dev/null; }

# l2_json EXPR [NAME=VALUE ...]: the same as vs_json (lib.sh).
l2_json() { vs_json "$@"; }

# fdb_doc BR: `vsctl --json fdb show BR` (status 1 if vsctl fails).
fdb_doc() { vsctl --json fdb show "$1" 2>/dev/null; }

# fdb_has BR MAC IFACE [VLAN] [STATIC]: BR has exactly one entry for (MAC, VLAN) (VLAN 0 or
# omitted: untagged) and it is on IFACE; with STATIC (true|false) its static flag too.
fdb_has() {
    local doc
    doc=$(fdb_doc "$1") || return 1
    json_true 'all(len(hits) == 1 and hits[0]["iface"] == iface
                   and (static == "" or bool(hits[0].get("static")) == (static == "true"))
                   for hits in [[e for e in d if mac(e["mac"]) == mac(m) and vl(e.get("vlan")) == int(v)]])' \
        m="$2" iface="$3" v="${4:-0}" static="${5:-}" <<<"$doc"
}

# fdb_lacks BR MAC [VLAN]: BR has no entry for (MAC, VLAN); VLAN "any": in no VLAN.
fdb_lacks() {
    local doc
    doc=$(fdb_doc "$1") || return 1
    json_true 'not [e for e in d if mac(e["mac"]) == mac(m)
                    and (v == "any" or vl(e.get("vlan")) == int(v))]' \
        m="$2" v="${3:-0}" <<<"$doc"
}

# FDB_SELECT: the entries of an fdb document that fdb_count / fdb_count_is count.
FDB_SELECT='len([e for e in d if which == "all" or bool(e.get("static")) == (which == "static")])'

# fdb_count BR [all|learned|static]: number of entries (fails if fdb show fails).
fdb_count() {
    local doc which=${2:-all}
    [[ "$which" =~ ^(all|learned|static)$ ]] || fail "fdb_count: unknown selector $which"
    doc=$(vsctl --json fdb show "$1") || fail "vsctl fdb show $1 failed"
    l2_json "$FDB_SELECT" which="$which" <<<"$doc"
}

# fdb_count_is BR N [all|learned|static]: status only (for wait_until).
fdb_count_is() {
    local doc
    [[ "${3:-all}" =~ ^(all|learned|static)$ ]] || return 2
    doc=$(fdb_doc "$1") || return 1
    json_true "$FDB_SELECT == n" which="${3:-all}" n:="$2" <<<"$doc"
}

# fdb_expect BR MAC IFACE [VLAN] [STATIC] WHAT: fail unless fdb_has holds now.
fdb_expect() {
    local br=$1 m=$2 ifc=$3 v=${4:-0} st=${5:-} what=${6:-fdb entry}
    fdb_has "$br" "$m" "$ifc" "$v" "$st" || {
        vsctl fdb show "$br" >&2 || true
        fail "$what: $br should have exactly one entry for $m vlan $v, on $ifc${st:+ (static=$st)}"
    }
}

# rss_kb PID: resident set size of PID in kB (VmRSS).
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || fail "no /proc/$1/status"
}

# ---------------------------------------------------------------------------------------
# Capturing with scapy (ci/scapy/sniff.py), one capture per name

declare -A VS_SNIFF_PID=()

# sniff_start NAME NS [IF [ARGS...]]: capture every frame arriving on IF (default eth0) in
# NS into $VS_TMP/sniff-NAME.jsonl until sniff_stop (at most 240 s); ARGS go to sniff.py
# (--raw: each frame's bytes too). Returns at once: sniff_ready waits until it captures.
sniff_start() {
    local name=$1 ns=$2 ifc=${3:-eth0} base
    shift $(($# < 3 ? $# : 3))
    base=$VS_TMP/sniff-$name
    rm -f "$base.jsonl" "$base.ready" "$base.stop"
    ip netns exec "$ns" "$VS_PY" "$VS_SCAPY_DIR/sniff.py" --iface "$ifc" \
        --out "$base.jsonl" --ready "$base.ready" --stop "$base.stop" --timeout 240 "$@" \
        </dev/null >"$base.log" 2>&1 &
    VS_SNIFF_PID[$name]=$!
    vs_track_pid "$!"
    VS_LOGS+=("$base.log")
}

# sniff_ready NAME...: wait (max 20 s) until every named capture runs.
sniff_ready() {
    local name
    for name in "$@"; do
        wait_until 20 "capture $name running" test -e "$VS_TMP/sniff-$name.ready"
        vs_alive "${VS_SNIFF_PID[$name]}" || fail "capture $name exited: $(cat "$VS_TMP/sniff-$name.log")"
    done
}

# sniff_stop NAME...: end the captures and wait for them (their files stay readable).
sniff_stop() {
    local name
    for name in "$@"; do
        touch "$VS_TMP/sniff-$name.stop"
    done
    for name in "$@"; do
        vs_wait_exit "${VS_SNIFF_PID[$name]}" 10 || fail "capture $name did not stop"
        [[ "$VS_RC" == 0 ]] || fail "capture $name failed (exit $VS_RC): $(cat "$VS_TMP/sniff-$name.log")"
    done
}

# Captures and the frames the switch sent: sniff_mark NAME PORT right after sniff_ready
# records PORT's tx_packets; sniff_caught_up NAME (status only) holds once capture NAME has
# at least as many frames as the switch has sent on PORT since. The captured namespace's
# eth0 gets nothing but what the switch sends on PORT, and frames arrive in the order sent,
# so once it holds, every frame the switch sent there so far is in the capture file: a
# "none at X" check made then cannot pass because a leaked copy was still on its way.
declare -A SNIFF_PORT SNIFF_TX0
sniff_mark() {
    SNIFF_PORT[$1]=$2
    SNIFF_TX0[$1]=$(iface_stat "$2" tx_packets)
}
sniff_caught_up() {
    local tx n
    tx=$(vsctl --json stats "${SNIFF_PORT[$1]}" 2>/dev/null |
        "$VS_PY" -B "$VS_CHECK" get 'd["tx_packets"]' 2>/dev/null) || return 1
    n=$(wc -l <"$VS_TMP/sniff-$1.jsonl") || return 1
    ((n >= tx - SNIFF_TX0[$1]))
}
# sniff_settle NAME...: wait (max 10 s) until each capture has every frame sent to it.
sniff_settle() {
    local name tx
    for name in "$@"; do
        # (In a subshell so that a failure can show the numbers.)
        (wait_until 10 "capture $name" sniff_caught_up "$name") 2>/dev/null && continue
        tx=$(iface_stat "${SNIFF_PORT[$name]}" tx_packets)
        vsctl stats >&2 || true
        fail "capture $name holds $(wc -l <"$VS_TMP/sniff-$name.jsonl") frames after 10 s;" \
            "the switch sent $((tx - SNIFF_TX0[$name])) on ${SNIFF_PORT[$name]} since it started"
    done
}

# sniff_count NAME EXPR [NAME=VALUE ...]: how many frames of capture NAME satisfy the Python
# expression EXPR, with the frame's summary bound to f (keys: src dst vlan vlans kind
# ethertype op psrc pdst hwsrc ip_src ip_dst icmp_type payload; see ci/scapy/l2common.py);
# prints the count. A frame the capture could not parse, a line that is not JSON or an
# expression that raises is an error (exit 2), never a smaller count: a "must not appear"
# check cannot pass because the frame it is about was unreadable (ci/check.py).
sniff_count() {
    local name=$1
    shift
    "$VS_PY" -B "$VS_CHECK" count "$VS_TMP/sniff-$name.jsonl" "$@"
}

# sniff_seen NAME N EXPR [NAME=VALUE ...]: status only: at least N frames of NAME match EXPR.
sniff_seen() {
    local name=$1 want=$2 n
    shift 2
    # A broken capture is "not yet" here; its complaint reaches wait_until's time-out report.
    n=$(sniff_count "$name" "$@") || return 1
    ((n >= want))
}

# sniff_expect NAME OP N EXPR WHAT [NAME=VALUE ...]: fail unless (count of EXPR in NAME) OP N.
sniff_expect() {
    local name=$1 op=$2 want=$3 expr=$4 what=$5 n
    shift 5
    n=$(sniff_count "$name" "$expr" "$@") || fail "$what: cannot check capture $name (see above)"
    test "$n" "$op" "$want" || {
        printf '%s\n' "--- frames of capture $name matching: $expr $*" >&2
        "$VS_PY" -B "$VS_CHECK" show "$VS_TMP/sniff-$name.jsonl" "$expr" "$@" | head -n 10 >&2
        fail "$what: $n frames at $name, expected $op $want"
    }
    log "$what: $n frames at $name"
}
