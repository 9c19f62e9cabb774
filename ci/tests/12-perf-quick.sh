#!/usr/bin/env bash
# The benchmark suite's smoke test: `perf/run.sh --quick` runs every profile once, briefly,
# for vswitch, the I/O floor (dpdk-testpmd) and OVS-DPDK (reported as missing where it is not
# installed). It fails only when a profile forwards nothing, never on speed.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "12-perf-quick"
log "perf/run.sh --quick --no-build"
run_ok "perf/run.sh --quick" timeout 240 bash "$VS_ROOT/perf/run.sh" --quick --no-build
vs_pass
