#!/usr/bin/env bash
# perf/aclbench.sh: the ACL classifiers side by side (issue 14): vswitch's Classifier and
# DPDK's rte_acl on ClassBench-like rule sets, by vswitch-aclbench (perf/src/bin), pinned
# to the worker core with taskset.
#
#   perf/aclbench.sh [--no-build] [--cpu N] [--results FILE] [-- vswitch-aclbench options]
#
# Builds vswitch-aclbench (`cargo build --release -p perf --bin vswitch-aclbench`; CARGO
# names another cargo command) unless --no-build, then runs it on CPU N (default 1, the
# worker core of perf/run.sh) with the options after `--` (default: its own, --rules
# 1,100,1000,10000 --keys 1000000 --family v4,v6; `vswitch-aclbench --help` lists them).
# With --results the markdown it prints goes to FILE too, under the command line, the
# revision and the machine; a run that fails (a build, the EAL, or any classifier's answer
# differing from the linear first match) writes no FILE and exits non-zero. The binary is
# taken from $VS_BIN_DIR, else $CARGO_TARGET_DIR/release, else target/release. Run as root
# on an otherwise idle machine: the first line gives the load average at the start.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=1
CPU=1
RESULTS=""
ARGS="$*"
while (($#)); do
    case $1 in
        --no-build) BUILD="" ;;
        --cpu) CPU=$2; shift ;;
        --results) RESULTS=$2; shift ;;
        --) shift; break ;;
        *) echo "usage: perf/aclbench.sh [--no-build] [--cpu N] [--results FILE] [-- vswitch-aclbench options]" >&2
           exit 2 ;;
    esac
    shift
done

BIN_DIR=${VS_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
BIN=$BIN_DIR/vswitch-aclbench
if [[ -n "$BUILD" ]]; then
    (cd "$ROOT" && ${CARGO:-cargo} build --release -p perf --bin vswitch-aclbench) || {
        echo "aclbench: the build failed; nothing measured" >&2
        exit 1
    }
fi
[[ -x "$BIN" ]] || { echo "aclbench: $BIN missing: cargo build --release -p perf --bin vswitch-aclbench" >&2; exit 1; }

cmd=(taskset -c "$CPU" "$BIN" --cpu "$CPU" "$@")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${cmd[@]}" | tee "$out"
# The other core's load skews the figures (two vCPUs may share a physical core): say what
# ran besides.
after="load average at the end $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes: $(ps -eo pcpu=,comm= --sort=-pcpu | awk 'index($2, "vswitch-aclb") != 1 && n++ < 3 {printf "%s %s%%; ", $2, $1}')"
echo "# $after"
if [[ -n "$RESULTS" ]]; then
    rev=$(git -C "$ROOT" rev-parse --short HEAD)
    # Results files written by earlier runs are not changes to what is measured.
    git -C "$ROOT" diff --quiet HEAD -- . ':(exclude)perf/results' || rev="$rev (with uncommitted changes)"
    {
        echo "Written by \`perf/aclbench.sh $ARGS\` (that is: \`${cmd[*]}\`) at $rev on $(date -u +%Y-%m-%dT%H:%MZ),"
        echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs."
        echo
        cat "$out"
        echo
        echo "# $after"
    } >"$RESULTS"
    echo "aclbench: results in $RESULTS" >&2
fi
