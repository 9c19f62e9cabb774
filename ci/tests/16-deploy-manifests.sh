#!/usr/bin/env bash
# The deployment files in deploy/ are consistent with the vswitchd that was built:
#   Kubernetes: deploy/kubernetes/vswitchd-daemonset.yaml parses (python3-yaml), every
#     document has apiVersion, kind and metadata.name; the DaemonSet's vswitchd arguments
#     are options `vswitchd --help` lists and vswitchd's own parser accepts them; its
#     host paths (/run/vswitch, /var/lib/vswitch, /dev/hugepages, /var/run/dpdk, /sys) are
#     mounted, the socket and the state file live on them, probes run `vsctl health`,
#     the metrics port is declared, hugepages cover --mem, and rollout and tolerations
#     are as documented.
#   systemd: deploy/systemd/vswitchd.service passes `systemd-analyze verify` (binaries
#     substituted in a temporary copy) without a warning, its capabilities are ones
#     `systemd-analyze capability` knows, its address families are in <bits/socket.h>, it
#     has the settings the README documents, and its ExecStart (with VSWITCHD_OPTS from deploy/systemd/vswitchd.default)
#     only uses options vswitchd accepts; its ExecStartPost readiness check waits for a
#     starting vswitchd and gives up on one that never answers.
#   systemd-analyze (Debian's systemd package) and <bits/socket.h> (libc6-dev) are required:
#   without them the test fails, it does not skip. verify runs offline on the unit file;
#   systemd need not be PID 1 (a container is fine).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "16-deploy-manifests"
# VS_DEPLOY_DIR: check another copy of deploy/ (e.g. a deliberately broken one).
DEPLOY=${VS_DEPLOY_DIR:-$VS_ROOT/deploy}
K8S=$DEPLOY/kubernetes/vswitchd-daemonset.yaml
UNIT=$DEPLOY/systemd/vswitchd.service
DEFAULTS=$DEPLOY/systemd/vswitchd.default
PY=$VS_PY
for f in "$K8S" "$UNIT" "$DEFAULTS"; do
    [[ -s "$f" ]] || fail "$f is missing or empty"
done

"$PY" -c 'import yaml' 2>/dev/null ||
    fail "$PY cannot import yaml: install Debian's python3-yaml (apt-get install python3-yaml; ci/setup.sh lists it)"
# The unit is checked with systemd's own tool; without it the unit is not verified, so the
# test fails (it does not skip).
systemd-analyze --version >/dev/null 2>&1 ||
    fail "systemd-analyze missing or not working: the unit cannot be verified (apt-get install systemd; ci/setup.sh lists it)"

# ---------------------------------------------------------------------------------------
# The options the built binaries accept, from their --help (one long option per line):
# "  --name <VALUE>  text" or "  -h, --help  text". Saved as "name value|flag".
help_options() {
    "$1" --help | sed -nE 's/^ +(-[A-Za-z], )?--([a-z0-9][a-z0-9-]*)( <[^>]+>)?.*/\2 \3/p' |
        awk '{ print $1, ($2 == "" ? "flag" : "value") }'
}
help_options "$VSWITCHD_BIN" >"$VS_TMP/vswitchd.options"
help_options "$VSCTL_BIN" >"$VS_TMP/vsctl.options"
for o in socket state-file lcores poll metrics help; do
    grep -q "^$o " "$VS_TMP/vswitchd.options" ||
        fail "could not read --$o from '$VSWITCHD_BIN --help' (its format changed?)"
done
grep -q "^timeout value" "$VS_TMP/vsctl.options" ||
    fail "could not read --timeout from '$VSCTL_BIN --help'"
log "vswitchd --help lists $(wc -l <"$VS_TMP/vswitchd.options") options, vsctl --help $(wc -l <"$VS_TMP/vsctl.options")"

# check_args WHAT BIN OPTIONS_FILE ARGS...: every --option in ARGS is listed in OPTIONS_FILE,
# options that take a value have one, flags have none, no positional words, no --help; then
# BIN itself must parse ARGS (ARGS followed by --help: clap parses and type-checks every
# argument before it prints help, and exits 2 on the first bad one).
check_args() {
    local what=$1 bin=$2 opts=$3 i=0 a name kind out
    shift 3
    local args=("$@")
    while ((i < ${#args[@]})); do
        a=${args[i]}
        [[ "$a" == --?* ]] || fail "$what: '$a' is not an option (no positional arguments expected)"
        name=${a#--}
        name=${name%%=*}
        kind=$(awk -v n="$name" '$1 == n { print $2 }' "$opts")
        [[ -n "$kind" ]] || fail "$what: --$name is not an option of $(basename "$bin") (not in its --help)"
        [[ "$name" != help && "$name" != version ]] || fail "$what: --$name does not belong in a deployment"
        if [[ "$kind" == value && "$a" != *=* ]]; then
            ((i + 1 < ${#args[@]})) || fail "$what: --$name needs a value"
            [[ "${args[i + 1]}" != --* ]] || fail "$what: --$name needs a value, got '${args[i + 1]}'"
            i=$((i + 1))
        elif [[ "$kind" == flag && "$a" == *=* ]]; then
            fail "$what: --$name takes no value"
        fi
        i=$((i + 1))
    done
    out=$("$bin" "${args[@]}" --help 2>&1 >/dev/null) ||
        fail "$what: $(basename "$bin") refuses '${args[*]}': $(head -n 1 <<<"$out")"
}

# ---------------------------------------------------------------------------------------
# Kubernetes: parse and inspect with python3-yaml. Prints three sections separated by
# "--" lines: the vswitchd args (one per line), each probe's vsctl options (one probe per
# line, tab-separated), a summary line.
"$PY" - "$K8S" >"$VS_TMP/k8s.out" <<'PY' || fail "$K8S: check failed (see above)"
import sys, yaml

path = sys.argv[1]
def bad(msg):
    sys.exit("%s: %s" % (path, msg))

try:
    docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
except yaml.YAMLError as e:
    bad("not valid YAML: %s" % e)
if not docs:
    bad("no documents")
for n, d in enumerate(docs, 1):
    if not isinstance(d, dict):
        bad("document %d is not a mapping" % n)
    for key in ("apiVersion", "kind"):
        if not isinstance(d.get(key), str) or not d[key]:
            bad("document %d has no %s" % (n, key))
    name = (d.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        bad("document %d (%s) has no metadata.name" % (n, d["kind"]))

def one(kind):
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        bad("expected one %s, found %d" % (kind, len(found)))
    return found[0]

ns = one("Namespace")["metadata"]["name"]
sa = one("ServiceAccount")
ds = one("DaemonSet")
if ds["apiVersion"] != "apps/v1":
    bad("DaemonSet apiVersion is %r, not apps/v1" % ds["apiVersion"])
for d in docs:
    if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
        bad("%s %s is not in namespace %s" % (d["kind"], d["metadata"]["name"], ns))

spec = ds.get("spec") or {}
tmpl = spec.get("template") or {}
labels = (tmpl.get("metadata") or {}).get("labels") or {}
sel = (spec.get("selector") or {}).get("matchLabels") or {}
if not sel or any(labels.get(k) != v for k, v in sel.items()):
    bad("DaemonSet selector %r does not match the pod labels %r" % (sel, labels))
for d in docs:
    if d["kind"] == "Service":
        s = d["spec"].get("selector") or {}
        if not s or any(labels.get(k) != v for k, v in s.items()):
            bad("Service %s selects %r, not the DaemonSet's pods" % (d["metadata"]["name"], s))
us = spec.get("updateStrategy") or {}
if us.get("type") != "RollingUpdate" or (us.get("rollingUpdate") or {}).get("maxUnavailable") != 1:
    bad("updateStrategy must be RollingUpdate with maxUnavailable 1, is %r" % us)
pod = tmpl.get("spec") or {}
if pod.get("serviceAccountName") != sa["metadata"]["name"]:
    bad("pod serviceAccountName %r is not the ServiceAccount %r"
        % (pod.get("serviceAccountName"), sa["metadata"]["name"]))
if pod.get("hostNetwork") is not True:
    bad("hostNetwork must be true")
if not any(t.get("operator") == "Exists" and not t.get("key") and not t.get("effect")
           for t in pod.get("tolerations") or []):
    bad("tolerations must include {operator: Exists} (run on every node, whatever its taints)")
grace = pod.get("terminationGracePeriodSeconds")
if not isinstance(grace, int) or grace < 30:
    bad("terminationGracePeriodSeconds must be >= 30 for a graceful stop, is %r" % grace)

ctrs = [c for c in pod.get("containers") or [] if c.get("name") == "vswitchd"]
if len(ctrs) != 1:
    bad("no container named vswitchd")
c = ctrs[0]
if not str(c.get("image", "")).startswith("vswitch/vswitchd:"):
    bad("image %r is not the documented placeholder vswitch/vswitchd:VERSION" % c.get("image"))
cmd = c.get("command") or []
if len(cmd) != 1 or not cmd[0].endswith("/vswitchd"):
    bad("command must be the vswitchd binary alone (options go in args), is %r" % cmd)
args = c.get("args") or []
if not all(isinstance(a, str) for a in args):
    bad("every arg must be a string (quote numbers): %r" % args)
if any("$(" in a for a in args):
    bad("args use $(VAR) expansion; this check cannot follow it")

def opt(name):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None

sock, state, metrics = opt("--socket"), opt("--state-file"), opt("--metrics")
if sock != "/run/vswitch/vswitchd.sock":
    bad("--socket must be /run/vswitch/vswitchd.sock, is %r" % sock)
if state != "/var/lib/vswitch/state.json":
    bad("--state-file must be /var/lib/vswitch/state.json, is %r" % state)
if not metrics or ":" not in metrics:
    bad("--metrics ADDR:PORT missing")
port = int(metrics.rsplit(":", 1)[1])
ports = [p for p in c.get("ports") or [] if p.get("containerPort") == port]
if not ports or ports[0].get("name") != "metrics":
    bad("the metrics port %d is not declared as containerPort named 'metrics'" % port)

# Volumes: every hostPath the switch needs is a volume, mounted, and vice versa.
vols = {v["name"]: v for v in pod.get("volumes") or []}
# Mounted by the switch's container or by an init container (install-cni).
inits = pod.get("initContainers") or []
mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
for ic in inits:
    for m in ic.get("volumeMounts") or []:
        mounts.setdefault(m["name"], m)
for m in mounts:
    if m not in vols:
        bad("volumeMount %s names no volume" % m)
host = {}
for name, v in vols.items():
    if "hostPath" not in v:
        continue
    if name not in mounts:
        bad("hostPath volume %s (%s) is not mounted" % (name, v["hostPath"]["path"]))
    host[v["hostPath"]["path"].rstrip("/")] = mounts[name]
need = ["/run/vswitch", "/var/lib/vswitch", "/dev/hugepages", "/var/run/dpdk", "/sys",
        "/opt/cni/bin", "/etc/cni/net.d"]
for p in need:
    alt = "/run/dpdk" if p == "/var/run/dpdk" else p
    if p not in host and alt not in host:
        bad("no hostPath volume for %s" % p)
def on_host(f):
    # The file is under a mountPath whose volume is the same host directory.
    for hp, m in host.items():
        mp = m["mountPath"].rstrip("/")
        if (f.startswith(mp + "/")) and hp == mp and not m.get("readOnly"):
            return True
    return False
for what, f in (("--socket", sock), ("--state-file", state)):
    if not on_host(f):
        bad("%s %s is not on a writable hostPath mount of the same host directory" % (what, f))

# Hugepages: requests == limits, and --mem (unless --no-huge) fits in them.
res = c.get("resources") or {}
lim, req = res.get("limits") or {}, res.get("requests") or {}
units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
def qty(s):
    s = str(s)
    for u, m in units.items():
        if s.endswith(u):
            return int(s[:-2]) * m
    return int(s)
if "memory" not in lim:
    bad("resources.limits.memory missing")
huge = [k for k in lim if k.startswith("hugepages-")]
if "--no-huge" not in args:
    if not huge:
        bad("no hugepages-* limit (or pass --no-huge)")
    for k in huge:
        if k in req and qty(req[k]) != qty(lim[k]):
            bad("%s requests != limits" % k)
    mem = int(opt("--mem") or 512) << 20
    total = sum(qty(lim[k]) for k in huge)
    if mem > total:
        bad("--mem %d MB is more than the hugepage limits (%d MB)" % (mem >> 20, total >> 20))

# Probes: exec vsctl ... health.
probes = []
for p in ("readinessProbe", "livenessProbe"):
    pr = c.get(p)
    if not pr:
        bad("%s missing" % p)
for p in ("startupProbe", "readinessProbe", "livenessProbe"):
    pr = c.get(p)
    if not pr:
        continue
    ex = (pr.get("exec") or {}).get("command") or []
    if len(ex) < 2 or not ex[0].endswith("/vsctl") or ex[-1] != "health":
        bad("%s must exec vsctl ... health, is %r" % (p, ex))
    probes.append(ex[1:-1])

priv = (c.get("securityContext") or {}).get("privileged") is True
caps = set(((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])
if not priv and not {"NET_ADMIN", "NET_RAW", "IPC_LOCK", "SYS_ADMIN"} <= caps:
    bad("container is neither privileged nor has NET_ADMIN, NET_RAW, IPC_LOCK, SYS_ADMIN")

# The CNI plugin and its network config: an init container copies vswitch-cni into the
# node's /opt/cni/bin and the ConfigMap's conflist into /etc/cni/net.d, both writable
# hostPath mounts.
ic = [i for i in inits if i.get("name") == "install-cni"]
if not ic:
    bad("no install-cni init container")
script = " ".join(ic[0].get("command") or []) + " ".join(ic[0].get("args") or [])
ic_mounts = {m["mountPath"].rstrip("/"): m for m in ic[0].get("volumeMounts") or []}
for hp in ("/opt/cni/bin", "/etc/cni/net.d"):
    vname = [n for n, v in vols.items() if (v.get("hostPath") or {}).get("path", "").rstrip("/") == hp]
    m = [m for m in ic[0].get("volumeMounts") or [] if vname and m["name"] == vname[0]]
    if not m or m[0].get("readOnly"):
        bad("install-cni does not mount %s writable" % hp)
    if m[0]["mountPath"].rstrip("/") not in script:
        bad("install-cni's command never writes into %s (mounted at %s)" % (hp, m[0]["mountPath"]))
if "/usr/local/bin/vswitch-cni" not in script:
    bad("install-cni does not install /usr/local/bin/vswitch-cni")
cms = [d for d in docs if d["kind"] == "ConfigMap"]
conflists = [(n, t) for d in cms for n, t in (d.get("data") or {}).items() if n.endswith(".conflist")]
if not conflists:
    bad("no ConfigMap holds a .conflist")
for n, t in conflists:
    if n not in script:
        bad("install-cni does not install %s" % n)
import json
for n, t in conflists:
    try:
        cl = json.loads(t)
    except ValueError as e:
        bad("%s is not JSON: %s" % (n, e))
    if not cl.get("plugins") or not cl.get("name") or not cl.get("cniVersion"):
        bad("%s lacks cniVersion, name or plugins" % n)

for a in args:
    print(a)
print("--")
for p in probes:
    print("\t".join(p))
print("--")
print("%d documents (%s), %d hostPath volumes mounted, %d probes" % (
    len(docs), ", ".join(d["kind"] for d in docs), len(host), len(probes)))
print("--")
# Each vswitch-cni plugin config of the conflists, as a runtime hands it over (the
# conflist's cniVersion and name added), one per line.
for n, t in conflists:
    cl = json.loads(t)
    for p in cl["plugins"]:
        if p.get("type") == "vswitch-cni":
            if p.get("socket", sock) != sock:
                bad("%s: the plugin's socket %r is not vswitchd's %r" % (n, p["socket"], sock))
            print(json.dumps(dict(p, cniVersion=cl["cniVersion"], name=cl["name"])))
PY
section() { awk -v n="$1" '/^--$/ { s++; next } s == n' "$VS_TMP/k8s.out"; }
log "$(basename "$K8S"): $(section 2)"
mapfile -t k8s_args < <(section 0)

# The CNI configs (the DaemonSet's conflist, the examples' NetworkAttachmentDefinitions)
# are ones the built plugin accepts: STATUS parses and validates the whole config before
# it asks vswitchd, so against a socket where nothing listens it must answer 51 (no
# vswitchd), never a config error (1, 2, 4, 6, 7).
CNI_BIN=$VS_BIN_DIR/vswitch-cni
[[ -x "$CNI_BIN" ]] || fail "$CNI_BIN missing: build it (cargo build --release)"
cni_config_ok() {
    local what=$1 config=$2 out rc=0
    config=$("$PY" -c 'import json, sys; c = json.loads(sys.argv[1]); c["socket"] = sys.argv[2]; print(json.dumps(c))' \
        "$config" "$VS_TMP/no-vswitchd.sock")
    out=$(CNI_COMMAND=STATUS CNI_PATH=/usr/lib/cni "$CNI_BIN" <<<"$config" 2>/dev/null) || rc=$?
    if [[ "$rc" == 0 ]] || ! vs_json_true 'd["code"] == 51' <<<"$out"; then
        fail "$what: vswitch-cni does not accept it: $out"
    fi
}
n=0
while IFS= read -r config; do
    [[ -n "$config" ]] || continue
    cni_config_ok "$(basename "$K8S") conflist" "$config"
    n=$((n + 1))
done < <(section 3)
((n > 0)) || fail "$(basename "$K8S"): no vswitch-cni plugin in its conflist"
for f in "$DEPLOY"/kubernetes/examples/*.yaml; do
    [[ -e "$f" ]] || continue
    mapfile -t nads < <("$PY" - "$f" <<'PY' || fail "$f: check failed (see above)"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if not d.get("apiVersion") or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
        sys.exit("%s: a document lacks apiVersion, kind or metadata.name" % sys.argv[1])
    if d["kind"] == "NetworkAttachmentDefinition":
        print(json.dumps(json.loads(d["spec"]["config"])))
PY
    )
    for config in "${nads[@]}"; do
        cni_config_ok "$(basename "$f") NetworkAttachmentDefinition" "$config"
        n=$((n + 1))
    done
done
log "$n vswitch-cni configs (conflist, examples) accepted by the built plugin"

check_args "DaemonSet args" "$VSWITCHD_BIN" "$VS_TMP/vswitchd.options" "${k8s_args[@]}"
log "DaemonSet: vswitchd accepts its args: ${k8s_args[*]}"
while IFS=$'\t' read -r -a probe; do
    check_args "DaemonSet probe 'vsctl ${probe[*]} health'" "$VSCTL_BIN" "$VS_TMP/vsctl.options" "${probe[@]}"
done < <(section 1)
log "DaemonSet: probes run vsctl health with options vsctl accepts"

# ---------------------------------------------------------------------------------------
# systemd unit. unit_get KEY: the values of KEY= in the unit, one per line (comments off).
unit_get() { sed -nE "s/^$1=(.*)$/\1/p" "$UNIT"; }
unit_want() {
    local key=$1 want=$2
    unit_get "$key" | grep -qxF -- "$want" || fail "$UNIT: expected $key=$want (has: $(unit_get "$key" | tr '\n' ' '))"
}
unit_want Type exec
unit_want Restart on-failure
unit_want KillSignal SIGTERM
unit_want RuntimeDirectory vswitch
unit_want StateDirectory vswitch
unit_want LimitMEMLOCK infinity
unit_want EnvironmentFile -/etc/default/vswitchd
unit_want WantedBy multi-user.target
[[ $(unit_get ExecStart | wc -l) == 1 ]] || fail "$UNIT: expected one ExecStart="
unit_get ExecStartPost | grep -q 'vsctl.* health' || fail "$UNIT: no ExecStartPost running 'vsctl health'"
grep -qE '^Type=notify' "$UNIT" && fail "$UNIT: Type=notify, but vswitchd does not call sd_notify"
log "systemd unit: Type=exec, readiness by vsctl health, Restart, KillSignal, directories, MEMLOCK"

# Names systemd would silently skip (systemd-analyze verify does not report them): every
# capability and address family must exist, and DPDK's capabilities must be kept.
read -r -a caps <<<"$(unit_get CapabilityBoundingSet | tr '\n' ' ')"
for c in CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_IPC_LOCK; do
    [[ " ${caps[*]} " == *" $c "* ]] || fail "$UNIT: CapabilityBoundingSet lacks $c (DPDK needs it)"
done
systemd-analyze capability >"$VS_TMP/caps" 2>"$VS_TMP/caps.err" ||
    fail "systemd-analyze capability failed: $(head -n 3 "$VS_TMP/caps.err")"
# (Its table: "NAME NUMBER", names in lower case; a sanity check that it is that table.)
grep -qi '^cap_net_admin ' "$VS_TMP/caps" ||
    fail "systemd-analyze capability lists no cap_net_admin (its format changed?)"
for c in "${caps[@]}"; do
    c=${c#\~}
    grep -qi "^${c} " "$VS_TMP/caps" || fail "$UNIT: CapabilityBoundingSet: unknown capability $c"
done
sock_h=""
for f in /usr/include/*/bits/socket.h /usr/include/bits/socket.h; do
    if [[ -f "$f" ]]; then sock_h=$f; break; fi
done
[[ -n "$sock_h" ]] ||
    fail "no <bits/socket.h> to check RestrictAddressFamilies against (apt-get install libc6-dev; ci/setup.sh lists it)"
families=$(unit_get RestrictAddressFamilies)
[[ -n "$families" ]] || fail "$UNIT: no RestrictAddressFamilies="
for af in $families; do
    af=${af#\~}
    [[ "$af" == none ]] && continue
    grep -qE "^#define[[:space:]]+${af}[[:space:]]" "$sock_h" ||
        fail "$UNIT: RestrictAddressFamilies: unknown address family $af (not in $sock_h)"
done
log "systemd unit: ${#caps[@]} capabilities kept, all known to systemd-analyze; address families $(tr '\n' ' ' <<<"$families")known to $sock_h"

# systemd-analyze verify on a copy whose binaries are the built ones (verify checks that
# ExecStart's program exists). Any output is a warning about the unit: fail on it.
unit_copy=$VS_TMP/vswitchd.service
sed -e "s|/usr/local/bin/vswitchd|$VSWITCHD_BIN|g" -e "s|/usr/local/bin/vsctl|$VSCTL_BIN|g" \
    "$UNIT" >"$unit_copy"
# verify exits 0 on most warnings (an unknown key, a bad value: "ignoring"), so any output
# at all fails the test.
rc=0
out=$(systemd-analyze verify --man=no "$unit_copy" 2>&1) || rc=$?
if ((rc != 0)) || [[ -n "$out" ]]; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify $UNIT (binaries substituted): exit $rc, output above"
fi
score=$(systemd-analyze security --offline=yes --no-pager "$unit_copy" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: *//p') || true
log "systemd-analyze verify ($(systemd-analyze --version | head -n 1)): clean; security exposure ${score:-unknown}"

# The environment the unit's commands see: Environment= lines, then the EnvironmentFile
# (the example in deploy/), which overrides them, as systemd does. Printed as NAME=VALUE.
env_of_unit() {
    "$PY" - "$UNIT" "$DEFAULTS" <<'PY'
import shlex, sys
env = {}
for line in open(sys.argv[1]):
    if line.startswith("Environment="):
        for w in shlex.split(line[len("Environment="):]):
            k, _, v = w.partition("=")
            env[k] = v
for n, line in enumerate(open(sys.argv[2]), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    k, sep, v = line.partition("=")
    if not sep or not k.replace("_", "").isalnum():
        sys.exit("%s:%d: not VAR=value: %r" % (sys.argv[2], n, line))
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1]
    env[k] = v
for k, v in env.items():
    print("%s=%s" % (k, v))
PY
}
env_of_unit >"$VS_TMP/unit.env" || fail "cannot read the environment of $UNIT / $DEFAULTS"
grep -q '^VSWITCHD_OPTS=' "$VS_TMP/unit.env" || fail "$DEFAULTS sets no VSWITCHD_OPTS"

# expand_cmd LINE: a unit command line expanded as systemd does it ($$ -> $, %% -> %,
# ${VAR} -> one word, $VAR alone -> split on whitespace), printed one word per line (NUL
# separated). Uses unit.env for the variables.
expand_cmd() {
    "$PY" - "$VS_TMP/unit.env" "$1" <<'PY'
import re, shlex, sys
env = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
line = sys.argv[2]
if "%" in line.replace("%%", ""):
    sys.exit("specifier %% in %r: this check does not expand it" % line)
words = []
for w in shlex.split(line):
    if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", w):
        words += env.get(w[1:], "").split()
        continue
    w = re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), w)
    words.append(w.replace("$$", "$").replace("%%", "%"))
sys.stdout.write("\0".join(words))
PY
}

mapfile -d '' -t start < <(expand_cmd "$(unit_get ExecStart)")
[[ "${start[0]}" == /usr/local/bin/vswitchd ]] || fail "$UNIT: ExecStart runs '${start[0]}', not /usr/local/bin/vswitchd"
check_args "ExecStart with VSWITCHD_OPTS from $(basename "$DEFAULTS")" "$VSWITCHD_BIN" \
    "$VS_TMP/vswitchd.options" "${start[@]:1}"
log "systemd ExecStart accepted by vswitchd: ${start[*]:1}"
sock=$(sed -n 's/^VSWITCH_SOCKET=//p' "$VS_TMP/unit.env")
[[ "$sock" == /run/vswitch/* ]] || fail "VSWITCH_SOCKET '$sock' is not under RuntimeDirectory /run/vswitch"
if grep -E '^VSWITCHD_OPTS=' "$VS_TMP/unit.env" | grep -qE -- '--(state-file|run-dir)'; then
    log "note: VSWITCHD_OPTS moves --state-file or --run-dir away from the unit's directories"
fi
# Options in commented examples of the default file (lines "#   --opt ..." and
# "#VSWITCHD_OPTS=...") that this build does not know (yet): a note, not a failure.
while read -r o; do
    grep -q "^${o#--} " "$VS_TMP/vswitchd.options" ||
        log "note: $(basename "$DEFAULTS") mentions $o in a comment; this vswitchd does not accept it"
done < <(grep -E '^#([[:space:]]+--|VSWITCHD_OPTS=)' "$DEFAULTS" |
    grep -oE -- '(^|[ "#])--[a-z][a-z0-9-]+' | tr -d ' "#' | sort -u)
# A commented full example (#VSWITCHD_OPTS="...") must parse too once this build knows
# all its options.
while IFS= read -r line; do
    read -r -a ex <<<"$(sed -E 's/^#VSWITCHD_OPTS=//; s/^"(.*)"$/\1/' <<<"$line")"
    known=1
    for o in "${ex[@]}"; do
        if [[ "$o" == --* ]] && ! grep -q "^${o#--} " "$VS_TMP/vswitchd.options"; then known=0; fi
    done
    if ((known)); then
        check_args "commented example in $(basename "$DEFAULTS")" "$VSWITCHD_BIN" \
            "$VS_TMP/vswitchd.options" "${ex[@]}"
    fi
done < <(grep -E '^#VSWITCHD_OPTS=' "$DEFAULTS")

# ExecStartPost, run for real (binaries substituted): it waits for a vswitchd that starts
# after it, and it gives up (non-zero, with a message) on a socket nobody serves.
post_line=$(sed -nE 's/^ExecStartPost=(.*)$/\1/p' "$unit_copy")
mapfile -d '' -t post < <(expand_cmd "$post_line")
ready_log=$VS_TMP/ready.log
VS_LOGS+=("$ready_log")
# start_vswitchd's first daemon listens on $VS_TMP/vswitchd1.sock.
VSWITCH_SOCKET=$VS_TMP/vswitchd1.sock VSWITCHD_READY_TIMEOUT=30 "${post[@]}" >"$ready_log" 2>&1 &
ready_pid=$!
vs_track_pid "$ready_pid"
# A fixed wait on purpose: what is checked is that nothing happens (it keeps polling).
sleep 1
vs_alive "$ready_pid" || fail "ExecStartPost returned before vswitchd was started"
start_vswitchd
vs_wait_exit "$ready_pid" 15 || fail "ExecStartPost still waiting 15 s after vswitchd was healthy"
assert_eq "$VS_RC" 0 "ExecStartPost exit code with a healthy vswitchd"
t0=$SECONDS
rc=0
VSWITCH_SOCKET=$VS_TMP/nobody.sock VSWITCHD_READY_TIMEOUT=2 timeout 30 "${post[@]}" \
    >"$ready_log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "ExecStartPost with no vswitchd: exit $rc (expected a failure within its bound)"
grep -q 'not healthy' "$ready_log" || fail "ExecStartPost with no vswitchd printed no message: $(cat "$ready_log")"
log "ExecStartPost: waits for a starting vswitchd (exit 0); none after 2 s: exit $rc in $((SECONDS - t0)) s"
stop_vswitchd
vs_pass
