#!/usr/bin/env bash
# ACLs through vsctl against a running vswitchd (the control plane's part: no packet is
# filtered here; null interfaces and a tunnel are what they bind to):
#  - acl add (each RULE one argument), acl set (the rules replaced, bindings kept), acl
#    show / list with --json field checks (CONTRACT's {name, rules: [{action, proto, src,
#    dst, sport, dport, hits}], bound}), the tables;
#  - bind / unbind on ports and on a tunnel, in and out; a transaction file with acl lines
#    (quoted rules and bare ones);
#  - every bad input: exit non-zero, one "vsctl: ..." line saying what is wrong, nothing
#    changed (acl list --json and acl show --json of every ACL compared);
#  - watch: acl changes are config events; /metrics: per-rule hits and the gauges;
#  - restart (SIGTERM) and crash (SIGKILL, the journal) restore ACLs and bindings; an
#    interface deleted takes its bindings with it, and the journal replays that.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "47-acl-control"
port=$(vs_free_port)
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd
vs_watch_config

cat >"$VS_TMP/base.txt" <<EOF
iface add a null
iface add b null
iface add up0 null
addr add up0 192.0.2.1/24
tunnel add vx0 vxlan vni=42 local=192.0.2.1 remote=192.0.2.2
bridge add br0
EOF
run_ok "interfaces and a tunnel (one transaction)" vsctl transaction "$VS_TMP/base.txt"

# acl add --json: the ACL as the switch holds it.
reply=$(vsctl --json acl add web "permit proto=tcp src=10.0.0.0/8 dport=80" \
    "permit-reflect proto=udp sport=1024-65535 dport=53" "deny proto=icmp icmp-type=8" \
    "permit proto=47 dst=2001:db8::/32" "deny")
vs_json_true '(d["name"] == "web" and len(d["rules"]) == 5 and d["default_hits"] == 0
    and d["bound"] == [])' <<<"$reply" || fail "acl add --json: $reply"
run_ok "acl add (icmp6, a code)" vsctl acl add v6 "deny proto=icmp6 icmp-type=1 icmp-code=4" "permit src=2001:db8::/32"
run_ok "acl add (one rule)" vsctl acl add spare deny

# acl show --json: CONTRACT's fields, null for any.
show=$(vsctl --json acl show web)
vs_json_true 'set(d) >= {"name", "rules", "bound", "default_hits"}' <<<"$show" ||
    fail "acl show --json lacks fields: $show"
vs_json_true 'all(set(r) >= {"action", "proto", "src", "dst", "sport", "dport", "icmp_type", "icmp_code", "hits"} for r in d["rules"])' \
    <<<"$show" || fail "acl show --json: rules lack fields: $show"
K='["action", "proto", "src", "dst", "sport", "dport", "icmp_type", "icmp_code", "hits"]'
rule() { vs_json '[d["rules"][i][k] for k in keys]' i:="$1" keys:="$K" <<<"$show"; }
assert_eq "$(rule 0)" '["permit", "tcp", "10.0.0.0/8", null, null, "80", null, null, 0]' "web rule 1"
assert_eq "$(rule 1)" '["permit-reflect", "udp", null, null, "1024-65535", "53", null, null, 0]' "web rule 2"
assert_eq "$(rule 2)" '["deny", "icmp", null, null, null, null, 8, null, 0]' "web rule 3"
assert_eq "$(rule 3)" '["permit", "47", null, "2001:db8::/32", null, null, null, null, 0]' "web rule 4"
assert_eq "$(rule 4)" '["deny", null, null, null, null, null, null, null, 0]' "web rule 5"
assert_eq "$(vsctl --json acl show v6 | vs_json '[d["rules"][0]["icmp_type"], d["rules"][0]["icmp_code"]]')" \
    '[1, 4]' "v6 rule 1: icmp type and code"
vsctl acl show web | grep -Eq '^ *1 +permit +tcp +10\.0\.0\.0/8 +- +- +80 +- +0$' ||
    fail "acl show table: $(vsctl acl show web)"
vsctl acl show web | grep -Eq '^ *\* +deny( +-)+ +0$' || fail "acl show table lacks the default deny: $(vsctl acl show web)"

# Bindings: ports and a tunnel, in and out; one ACL on several.
run_ok "bind web to a in" vsctl acl bind a web in
run_ok "bind web to vx0 out (a tunnel)" vsctl acl bind vx0 web out
reply=$(vsctl --json acl bind b v6 out)
assert_eq "$(vs_json '[d["iface"], d["acl"], d["direction"]]' <<<"$reply")" '["b", "v6", "out"]' "acl bind --json"
assert_eq "$(vsctl --json acl show web | vs_json 'd["bound"]')" \
    '[{"iface": "a", "direction": "in"}, {"iface": "vx0", "direction": "out"}]' "web bound"

# acl set: the rules replaced, the bindings kept.
reply=$(vsctl --json acl set web "permit proto=tcp dport=443" "deny")
vs_json_true '(len(d["rules"]) == 2 and d["rules"][0]["dport"] == "443"
    and [b["iface"] for b in d["bound"]] == ["a", "vx0"])' <<<"$reply" || fail "acl set --json: $reply"

# acl list --json: {name, rules (how many), bound}; and the table.
list=$(vsctl --json acl list)
assert_eq "$(vs_json '[[a["name"], a["rules"], len(a["bound"])] for a in d]' <<<"$list")" \
    '[["spare", 1, 0], ["v6", 2, 1], ["web", 2, 2]]' "acl list --json"
vsctl acl list | grep -Eq '^web +2 +a in, vx0 out$' || fail "acl list table: $(vsctl acl list)"
vsctl acl list | grep -Eq '^spare +1 +-$' || fail "acl list table: $(vsctl acl list)"

# A transaction of acl lines: quoted rules and bare ones; all or nothing.
cat >"$VS_TMP/acls.txt" <<EOF
acl add dns "permit proto=udp dport=53" 'permit proto=tcp dport=53' deny
acl add ssh permit proto=tcp dport=22 deny
acl bind b ssh in
acl unbind b out
acl bind b v6 out
EOF
refused_once=$(vsctl acl bind b ssh in 2>&1 || true)
[[ "$refused_once" == 'vsctl: acl "ssh" not found' ]] || fail "bind before add: $refused_once"
run_ok "transaction of acl lines" vsctl transaction "$VS_TMP/acls.txt"
assert_eq "$(vsctl --json acl show dns | vs_json '[r["dport"] for r in d["rules"]]')" '["53", "53", null]' "dns rules"
assert_eq "$(vsctl --json acl show ssh | vs_json '[len(d["rules"]), d["bound"]]')" \
    '[2, [{"iface": "b", "direction": "in"}]]' "ssh bound to b in"
assert_eq "$(vsctl --json acl show v6 | vs_json 'd["bound"]')" '[{"iface": "b", "direction": "out"}]' \
    "v6 unbound and bound again in one transaction"
run_ok "unbind b in" vsctl acl unbind b in
run_ok "bind ssh to b in again" vsctl acl bind b ssh in
log "ACLs added, set, bound and listed"

for e in "add_acl web" "set_acl web" "bind_acl a/in" "bind_acl vx0/out" "unbind_acl b/out" "add_acl dns"; do
    wait_until 10 "config event '$e'" grep -q "config $e\$" "$VS_WATCH_LOG"
done
vs_stop_pid "$VS_WATCH_PID" TERM 5

metrics=$(vs_metrics "$port")
for line in 'vswitch_acls 5' 'vswitch_acl_bindings 4' \
    'vswitch_acl_rule_hits_total{acl="web",rule="1",action="permit"} 0' \
    'vswitch_acl_rule_hits_total{acl="web",rule="2",action="deny"} 0' \
    'vswitch_acl_rule_hits_total{acl="web",rule="default",action="deny"} 0' \
    'vswitch_acl_rule_hits_total{acl="dns",rule="3",action="deny"} 0'; do
    grep -qxF "$line" <<<"$metrics" || fail "/metrics: '$line' missing: $(grep acl <<<"$metrics")"
done
log "/metrics: per-rule hits and the gauges"

# ---------------------------------------------------------------------------------------
# Bad input: one line, says what is wrong, nothing changed.

# state: every ACL as listed and shown (rules, hits, bindings).
state() {
    {
        vsctl --json acl list
        for n in $(vsctl --json acl list | vs_json '" ".join(a["name"] for a in d)' | tr -d '"'); do
            vsctl --json acl show "$n"
        done
    } 2>&1
}
VS_BEFORE=$(state)
refused() { vs_refused state "$@"; }

refused 'rule 1: dport 70000 is not a port \(0 to 65535\)' acl add x "permit proto=tcp dport=70000"
refused 'rule 2: sport 65536 is not a port' acl set web "deny" "permit proto=udp sport=1-65536"
refused 'sport 90-80 is not a range' acl add x "permit proto=udp sport=90-80"
refused 'dport must be a port or a range' acl add x "permit proto=tcp dport=-1"
refused 'src "10\.0\.0\.300/8" is not' acl add x "permit src=10.0.0.300/8"
refused 'dst 10\.1\.2\.3/8 has host bits set: did you mean 10\.0\.0\.0/8\?' acl add x "permit dst=10.1.2.3/8"
refused 'src 10\.0\.0\.0/33' acl add x "permit src=10.0.0.0/33"
refused 'dst "nowhere" is not a CIDR' acl add x "permit dst=nowhere"
refused "a rule's prefixes are of one family" acl add x "permit src=10.0.0.0/8 dst=2001:db8::/32"
refused 'action "allow" is unknown \(permit, deny, permit-reflect\)' acl add x "allow proto=tcp"
refused 'proto must be tcp, udp, icmp, icmp6 or a protocol number' acl add x "permit proto=gre"
refused 'proto 256 is not an IP protocol number \(0 to 255\)' acl add x "permit proto=256"
refused 'icmp-type needs proto=icmp or proto=icmp6' acl add x "deny icmp-type=8"
refused 'icmp-type needs proto=icmp or proto=icmp6' acl add x "deny proto=tcp icmp-type=8"
refused 'icmp-code needs icmp-type' acl add x "deny proto=icmp icmp-code=3"
refused 'icmp-type 256 is out of range' acl add x "deny proto=icmp icmp-type=256"
refused 'proto icmp is IPv4.s.*use proto=icmp6' acl add x "deny proto=icmp src=2001:db8::/32"
refused 'dport needs proto=tcp or proto=udp' acl add x "permit dport=80"
refused 'unknown key "port"' acl add x "permit proto=tcp port=80"
refused 'proto is given twice' acl add x "permit proto=tcp proto=udp"
refused 'a rule starts with its action' acl add x "proto=tcp permit"
refused 'acl "web" exists already' acl add web deny
refused 'name "bad/name" contains' acl add bad/name deny
refused 'acl "nope" not found' acl set nope deny
refused 'acl "nope" not found' acl del nope
refused 'acl "web" is bound to a in \(acl unbind a in first\)' acl del web
refused 'acl "nope" not found' acl bind a nope out
refused 'interface "ghost" not found' acl bind ghost web in
refused 'bvi:br0: ACLs on a bridge.s routed interface are not supported yet' acl bind bvi:br0 web in
refused 'a in has acl "web" already: one ACL per interface and direction' acl bind a spare in
refused 'direction must be in or out, not "both"' acl bind a spare both
refused 'no acl is bound to a out' acl unbind a out
refused 'interface "ghost" not found' acl unbind ghost in
printf 'acl add t1 deny\nacl bind a t1 in\n' >"$VS_TMP/bad.txt"
refused 'change 2 of 2 \(bind_acl\): a in has acl "web" already.*; nothing was applied' \
    transaction "$VS_TMP/bad.txt"
printf 'acl add t1 "deny proto=tcp\n' >"$VS_TMP/bad2.txt"
refused 'line 1: the quote " is not closed' transaction "$VS_TMP/bad2.txt"
log "$VS_REFUSED bad commands refused, configuration unchanged"
vs_refused_report

# ---------------------------------------------------------------------------------------
# Restart and crash restore ACLs and bindings.

vs_restart_same state TERM

# Changes just before a crash, from the journal: an ACL added, one set, a bound interface
# deleted (its bindings go with it).
run_ok "acl added just before a crash" vsctl acl add late "permit proto=udp dport=4789"
run_ok "acl set just before a crash" vsctl acl set dns "permit proto=udp dport=53" deny
run_ok "binding added just before a crash" vsctl acl bind up0 late in
run_ok "a bound interface deleted" vsctl iface del b
vs_json_true 'all(b["iface"] != "b" for a in d for b in a["bound"])' <<<"$(vsctl --json acl list)" ||
    fail "b's bindings outlived it: $(vsctl --json acl list)"
vs_restart_same state KILL

# Unbound, an ACL can go; a tunnel deleted takes its binding too.
run_ok "unbind a in" vsctl acl unbind a in
run_ok "tunnel del vx0 (bound out)" vsctl tunnel del vx0
run_ok "acl del web (no longer bound)" vsctl acl del web
run_ok "acl del v6 (its interface is gone)" vsctl acl del v6
assert_eq "$(vsctl --json acl list | vs_json '[[a["name"], len(a["bound"])] for a in d]')" \
    '[["dns", 0], ["late", 1], ["spare", 0], ["ssh", 0]]' "ACLs left"
stop_vswitchd
vs_pass
