#!/usr/bin/env bash
# gRPC over TLS TCP and the socket group:
#   - vswitchd --listen 127.0.0.1:PORT --tls-cert --tls-key --tls-client-ca (a test CA made
#     here with openssl): a grpcio client with a certificate of that CA gets Health; no
#     client certificate, a certificate of another CA, and plain-text TCP are refused
#     (ci/grpc/tls.py);
#   - --listen without the TLS flags: vswitchd refuses to start, with one clear line;
#   - --socket-group GROUP: the unix socket is mode 0660, group GROUP; an unknown group:
#     vswitchd refuses to start, naming the group.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "15-tls"
command -v openssl >/dev/null || fail "openssl missing (apt-get install openssl)"
command -v groupadd >/dev/null || fail "groupadd missing (apt-get install passwd)"
vs_grpc_init

# The test's group, removed on exit whatever happens (then the usual cleanup).
GROUP=$VS_TAG
GROUP_MADE=""
tls_cleanup() {
    local rc=$?
    set +e
    [[ -n "$GROUP_MADE" ]] && groupdel "$GROUP_MADE"
    (exit "$rc") # vs_cleanup takes the exit code from $?
    vs_cleanup
}
trap tls_cleanup EXIT
! getent group "$GROUP" >/dev/null || fail "group $GROUP exists already"
groupadd "$GROUP" || fail "groupadd $GROUP failed"
GROUP_MADE=$GROUP
log "group $GROUP created"

# A CA, a server certificate for 127.0.0.1 and a client certificate from it; another CA
# with a client certificate of its own. P-256 keys (quick to make).
PKI=$VS_TMP/pki
mkdir -p "$PKI"
pki_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key"; }
pki_ca() {
    pki_key "$1"
    openssl req -x509 -new -key "$PKI/$1.key" -out "$PKI/$1.pem" -days 2 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# pki_leaf NAME CA CN EXTENSION...
pki_leaf() {
    local name=$1 ca=$2 cn=$3
    shift 3
    pki_key "$name"
    openssl req -new -key "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/CN=$cn"
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature "$@" \
        >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
        -CAcreateserial -out "$PKI/$name.pem" -days 2 -extfile "$PKI/$name.ext"
}
{
    pki_ca ca "vswitch CI test CA $VS_TAG"
    pki_ca other "another CA $VS_TAG"
    pki_leaf server ca 127.0.0.1 subjectAltName=IP:127.0.0.1 extendedKeyUsage=serverAuth
    pki_leaf client ca "vswitch CI client" extendedKeyUsage=clientAuth
    pki_leaf rogue other "vswitch CI client" extendedKeyUsage=clientAuth
} >"$PKI/openssl.log" 2>&1 || {
    cat "$PKI/openssl.log" >&2
    fail "openssl could not make the test certificates"
}
openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" "$PKI/client.pem" >/dev/null ||
    fail "test certificates do not verify against their CA"
log "test PKI in $PKI: ca, server (SAN IP:127.0.0.1), client; other CA with its own client"

free_port() {
    "$VS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
VSWITCHD_EXTRA=(--listen "127.0.0.1:$port" --tls-cert "$PKI/server.pem"
    --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem" --socket-group "$GROUP")
start_vswitchd
wait_until 10 "vswitchd listening on 127.0.0.1:$port" \
    sh -c "ss -Hltn 'sport = :$port' | grep -q LISTEN"
perm=$(stat -c '%a %G' "$VS_SOCK")
assert_eq "$perm" "660 $GROUP" "mode and group of $VS_SOCK with --socket-group $GROUP"
log "unix socket $VS_SOCK: mode 660, group $GROUP"

grpc_py 60 tls.py --gen "$GEN" --addr "127.0.0.1:$port" --pki "$PKI" --unix "$VS_SOCK" ||
    fail "TLS checks failed (see above)"
# A TLS client that never finishes its call cannot hold the stop either (5 s grace).
"$VS_PY" -B "$(dirname "$0")/../grpc/hold_call.py" --tls "$PKI" "127.0.0.1:$port" \
    /vswitch.v1.Vswitch/ListInterfaces >"$VS_TMP/hold.log" 2>&1 &
HOLD_PID=$!
vs_track_pid "$HOLD_PID"
wait_until 10 "the TLS client started its call" grep -q holding "$VS_TMP/hold.log"
stop_vswitchd
grep -q "gRPC (TCP): calls still in progress 5 s after the stop signal" "$VSWITCHD_LOG" ||
    fail "vswitchd did not say it closed the held TLS call's connection"
wait_until 5 "the held TLS connection closed by vswitchd" grep -q "closed by the server" "$VS_TMP/hold.log"
vs_stop_pid "$HOLD_PID" TERM 5
log "a TLS call never finished did not hold the stop (closed after the 5 s grace, exit 0)"
! ss -Hltn "sport = :$port" | grep -q LISTEN || fail "port $port still listening after SIGTERM"

# refused_start WHAT REGEX ARGS...: vswitchd with ARGS (and its own socket, state file and
# prefix) must exit non-zero within 20 s, with exactly one line on stderr that matches
# REGEX (case-insensitive: the option and what is wrong with it), and leave no socket behind.
REFUSALS=0
refused_start() {
    local what=$1 regex=$2 n sock err pid lines
    shift 2
    REFUSALS=$((REFUSALS + 1))
    n=$REFUSALS
    sock=$VS_TMP/refused$n.sock
    err=$VS_TMP/refused$n.err
    VS_PREFIXES+=("${VS_TAG}r$n")
    VS_LOGS+=("$err")
    "$VSWITCHD_BIN" --socket "$sock" --state-file "$VS_TMP/refused$n.json" \
        --run-dir "$VS_TMP/run-refused$n" --file-prefix "${VS_TAG}r$n" --no-huge \
        --poll adaptive --lcores 0,1 --workers 1 "$@" </dev/null >"$VS_TMP/refused$n.out" 2>"$err" &
    pid=$!
    vs_track_pid "$pid"
    vs_wait_exit "$pid" 20 || fail "$what: vswitchd $* still running after 20 s; it must refuse to start"
    lines=$(grep -c . "$err" || true)
    log "$what: vswitchd $* -> exit $VS_RC, stderr: $(head -c 300 "$err")"
    ((VS_RC != 0)) || fail "$what: vswitchd exited 0; it must refuse to start"
    [[ "$lines" == 1 ]] || {
        cat "$err" >&2
        fail "$what: expected one line on stderr, got $lines"
    }
    grep -Eqi -- "$regex" "$err" || fail "$what: the error does not say what is wrong (/$regex/)"
    assert_file_absent "$sock" "$what: socket"
}
port2=$(free_port)
refused_start "--listen without TLS" '--listen [0-9.:]+ needs --tls-cert, --tls-key and --tls-client-ca' \
    --listen "127.0.0.1:$port2"
refused_start "--listen with --tls-cert but no key" '--listen [0-9.:]+ needs .*--tls-key' \
    --listen "127.0.0.1:$port2" \
    --tls-cert "$PKI/server.pem" --tls-client-ca "$PKI/ca.pem"
refused_start "--tls-cert that does not exist" '--tls-cert [^ ]*/nosuch\.pem: No such file' \
    --listen "127.0.0.1:$port2" \
    --tls-cert "$VS_TMP/nosuch.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem"
badgroup=nogrp$$
! getent group "$badgroup" >/dev/null || fail "group $badgroup exists; it must not"
refused_start "unknown --socket-group" "--socket-group: no group named \"$badgroup\"" \
    --socket-group "$badgroup"

groupdel "$GROUP" || fail "groupdel $GROUP failed"
GROUP_MADE=""
! getent group "$GROUP" >/dev/null || fail "group $GROUP still exists after groupdel"
log "group $GROUP removed"
vs_pass
