#!/usr/bin/env bash
# The benchmark harness's own checks (perf/run.sh, perf/report.py), fast and without DPDK:
# each way the harness could turn a failure into a figure must fail instead.
#  1. `report.py selftest`: parsers on captured output, and the constructed failures
#     (pmd-perf-show with "Iterations:" but no rates -> ParseError; a testpmd log that died
#     after one period -> ParseError for a longer window; a failed sample -> "mpps": null in
#     the written JSON; goals met, short and not measured).
#  2. The same through the command line run.sh calls: `report.py ovs` / `testpmd` exit non-zero
#     on those files; `report.py sample` writes null for failures; `write` computes the goals;
#     `check` fails when the floor has no figure.
#  3. Every profile perf/run.sh has is in report.py's GOALS.
#  4. perf/run.sh with a build that fails exits non-zero before measuring and writes no results:
#     once with a stand-in cargo that exits 101 (what cargo returns on a compile error; needs
#     nothing), once with the real cargo on a one-file crate with a syntax error (no
#     dependencies, --offline: rustc stops at the parse error within a second or two), so a
#     genuine broken build is shown to propagate, not only an exit status we chose.
#  5. perf/run.sh --baseline: an unknown revision fails; a baseline whose build fails fails the
#     run, after building in a separate work tree at that revision with its own target dir,
#     and the work tree is removed at exit.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "00-perf-harness"
PY=$VS_PY
REPORT="$VS_ROOT/perf/report.py"
RUN="$VS_ROOT/perf/run.sh"
TD="$VS_ROOT/perf/testdata"

# expect_fail WHAT PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E) on stderr.
expect_fail() {
    local what=$1 pattern=$2 rc=0
    shift 2
    "$@" >"$VS_TMP/out.txt" 2>"$VS_TMP/err.txt" || rc=$?
    if ((rc == 0)); then
        cat "$VS_TMP/out.txt" "$VS_TMP/err.txt" >&2
        fail "$what: exited 0, expected a failure"
    fi
    grep -Eq -- "$pattern" "$VS_TMP/err.txt" ||
        { cat "$VS_TMP/err.txt" >&2; fail "$what: exit $rc but stderr lacks /$pattern/"; }
    log "$what: exit $rc, $(grep -Em1 -- "$pattern" "$VS_TMP/err.txt")"
}

# json_check FILE PY-EXPR WHAT: PY-EXPR on the JSON document `d` must be true.
json_check() {
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" || fail "$3 ($2 is false on $1)"
}

# --- 1. selftest --------------------------------------------------------------------------
log "report.py selftest"
"$PY" "$REPORT" selftest || fail "report.py selftest failed"

# --- 2. the command line run.sh uses ------------------------------------------------------
expect_fail "pmd-perf-show with Iterations but no rates" "ParseError" \
    "$PY" "$REPORT" ovs "$TD/ovs-3.1-pmd-perf-show-no-rates.txt"
idle=$("$PY" "$REPORT" ovs "$TD/ovs-3.1-pmd-perf-show-idle.txt") ||
    fail "report.py ovs on an idle PMD (a measured zero) failed"
[[ "$idle" == *'"mpps": 0.0'* ]] || fail "idle PMD: expected a measured 0.0, got $idle"
expect_fail "testpmd that died after one period, 2-period window" "needs 2" \
    "$PY" "$REPORT" testpmd "$TD/testpmd-22.11-died-after-one-period.txt" --skip 1 --take 2

S=$VS_TMP/samples.jsonl
sample() { "$PY" "$REPORT" sample --out "$S" "$@" 2>/dev/null || fail "report.py sample $*"; }
sample xconnect vswitch 1 ok "" '{"mpps": 9.5, "cycles_per_packet": 100.0}'
sample xconnect floor 1 failed "testpmd printed 1 Tx-pps period(s), the window needs 2" '{"mpps": 3.0}'
sample xconnect ovs 1 ok "" '{}'
sample l2-1k vswitch 1 ok "" '{"mpps": 3.0}'
sample l2-1k floor 1 ok "" '{"mpps": 10.0}'
sample l2-1k ovs 1 missing "skipped by --no-ovs"
sample v2v-vhost vswitch 1 ok "" '{"mpps": 5.5}'
sample v2v-vhost floor 1 ok "" '{"mpps": 5.0}'
sample v2v-vhost ovs 1 missing "skipped by --no-ovs"
printf 'date\t2000-01-01\ngit_revision\tunknown\nquick\t1\nruns\t1\nwarmup_s\t1\nwindow_s\t2\n' \
    >"$VS_TMP/meta.tsv"
printf '%s\tA\tx\t--profile xconnect\t4096\n%s\tA\tl\t--profile l2\t4096\n%s\tB\tv\t\t0\n' \
    xconnect l2-1k v2v-vhost >"$VS_TMP/profiles.tsv"
"$PY" "$REPORT" write --samples "$S" --meta "$VS_TMP/meta.tsv" --profiles "$VS_TMP/profiles.tsv" \
    --md "$VS_TMP/r.md" --json "$VS_TMP/r.json" >/dev/null || fail "report.py write failed"
J=$VS_TMP/r.json
json_check "$J" '[s["mpps"] for s in d["samples"] if s["status"] != "ok"] == [None, None, None, None]' \
    "failed and missing samples carry mpps null"
json_check "$J" '[s["note"] for s in d["samples"] if s["system"] == "ovs" and s["profile"] == "xconnect"] == ["the parsed result has no rate (mpps None)"]' \
    "an ok sample without a rate is a failed one, with the reason"
json_check "$J" 'd["profiles"][0]["systems"]["floor"]["status"] == "failed" and d["profiles"][0]["systems"]["floor"]["mpps"] is None' \
    "a profile whose floor only failed has no floor figure"
goal() { "$PY" -c 'import json, sys
g = {g["name"]: g for g in json.load(open(sys.argv[1]))["goals"]}[sys.argv[2]]
print("%s %s" % (g["met"], g["measured"] is None))' "$J" "$1"; }
assert_goal() {
    local got
    got=$(goal "$1") || fail "goal $1 not in the results"
    [[ "$got" == "$2" ]] || fail "goal $1: expected '$2' (met, measured is null), got '$got'"
    log "goal $1: $(grep -F "Goal $1 " "$VS_TMP/r.md" || grep -F "| $1 |" "$VS_TMP/r.md")"
}
assert_goal "v2v-vhost: vswitch/floor" "True False"
assert_goal "l2-1k: vswitch/floor" "False False"
assert_goal "xconnect: vswitch/floor" "None True"
assert_goal "l2-1k: vswitch/ovs" "None True"
assert_goal "vswitch vxlan-encap / vswitch l2-1k" "None True"
json_check "$J" 'all(set(g) >= {"target", "measured", "met"} and (g["measured"] is not None or g["why"]) for g in d["goals"])' \
    "every goal has target, measured and met, and a reason when not measured"
expect_fail "check with a floor that only failed" "xconnect/floor forwarded nothing" \
    "$PY" "$REPORT" check --samples "$S"

# --- 3. goals for every profile -----------------------------------------------------------
goals=$("$PY" "$REPORT" goals)
for p in $(bash "$RUN" --list-profiles); do
    grep -q "^$p: vswitch/floor" <<<"$goals" || fail "profile $p has no vswitch/floor goal in report.py GOALS"
    grep -q "^$p: vswitch/ovs" <<<"$goals" || fail "profile $p has no vswitch/ovs goal in report.py GOALS"
done
log "every profile of run.sh has goals: $(bash "$RUN" --list-profiles | tr '\n' ' ')"

# --- 4. a failed build fails the run ------------------------------------------------------
results_before=$(ls -l "$VS_ROOT/perf/results")
OUT=$VS_TMP/results
short_run=(--profiles xconnect --runs 1 --warmup 1 --window 1 --no-ovs --out "$OUT")
printf '#!/bin/sh\necho "error[E0000]: stand-in for a failed build" >&2\nexit 101\n' >"$VS_TMP/cargo-101"
chmod +x "$VS_TMP/cargo-101"
expect_fail "run.sh, cargo exits 101" "failed \(exit 101\).*no results written" \
    env CARGO="$VS_TMP/cargo-101" timeout 120 bash "$RUN" "${short_run[@]}"
if grep -q "run 1/" "$VS_TMP/err.txt"; then fail "run.sh measured after a failed build"; fi
[[ ! -e "$OUT" ]] || fail "run.sh wrote $OUT after a failed build"

real_cargo=$(command -v cargo || true)
for c in "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" /root/.cargo/bin/cargo; do
    if [[ -z "$real_cargo" && -x "$c" ]]; then real_cargo=$c; fi
done
if [[ -z "$real_cargo" ]]; then
    log "cargo not found: the genuinely broken build is not tried (the stand-in above was)"
else
    crate=$VS_TMP/broken
    mkdir -p "$crate/src"
    printf '[package]\nname = "perf"\nversion = "0.0.0"\nedition = "2021"\n\n[workspace]\n' \
        >"$crate/Cargo.toml"
    printf 'fn main() {\n    let x = ;\n}\n' >"$crate/src/main.rs"
    # run.sh's own arguments (build --release -p perf), against the broken crate named perf.
    cat >"$VS_TMP/cargo-broken" <<EOF
#!/bin/sh
exec "$real_cargo" "\$@" --offline --manifest-path "$crate/Cargo.toml" --target-dir "$crate/target"
EOF
    chmod +x "$VS_TMP/cargo-broken"
    expect_fail "run.sh, real cargo on a crate with a syntax error" \
        "failed \(exit 101\).*no results written" \
        env CARGO="$VS_TMP/cargo-broken" timeout 120 bash "$RUN" "${short_run[@]}"
    grep -q "expected expression" "$VS_TMP/err.txt" || fail "cargo did not report the syntax error"
    if grep -q "run 1/" "$VS_TMP/err.txt"; then fail "run.sh measured after a failed build"; fi
    [[ ! -e "$OUT" ]] || fail "run.sh wrote $OUT after a failed build"
fi
[[ "$(ls -l "$VS_ROOT/perf/results")" == "$results_before" ]] || fail "perf/results changed"

# --- 5. --baseline ------------------------------------------------------------------------
expect_fail "run.sh --baseline with an unknown revision" "not a commit" \
    timeout 60 bash "$RUN" --no-build --baseline no-such-revision-0 "${short_run[@]}"
# The baseline's stand-in cargo records where it runs, then fails as a broken build does.
cat >"$VS_TMP/cargo-baseline" <<EOF
#!/bin/sh
echo "\$PWD \$(git rev-parse HEAD) \$CARGO_TARGET_DIR" >"$VS_TMP/baseline-build.txt"
exit 101
EOF
chmod +x "$VS_TMP/cargo-baseline"
want=$(git -C "$VS_ROOT" rev-parse HEAD~1) || fail "git rev-parse HEAD~1 in $VS_ROOT"
expect_fail "run.sh --baseline HEAD~1 whose build fails" "baseline build .*failed \(exit 101\)" \
    env CARGO="$VS_TMP/cargo-baseline" timeout 120 bash "$RUN" --no-build --baseline HEAD~1 \
    "${short_run[@]}"
[[ ! -e "$OUT" ]] || fail "run.sh wrote $OUT after a failed baseline build"
read -r tree rev target <"$VS_TMP/baseline-build.txt" || fail "the baseline build never ran"
[[ "$rev" == "$want" ]] || fail "baseline built at $rev, expected HEAD~1 = $want"
[[ "$tree" != "$VS_ROOT" && "$tree" == /tmp/vswitch-perf-baseline.* ]] ||
    fail "baseline built in $tree, not in a separate work tree"
[[ -n "$target" && "$target" != "$VS_ROOT/target" ]] || fail "baseline target dir '$target'"
[[ ! -e "$tree" ]] || fail "baseline work tree $tree left behind"
if git -C "$VS_ROOT" worktree list --porcelain | grep -qxF "worktree $tree"; then
    fail "git still lists the baseline work tree $tree"
fi
log "baseline built in $tree at ${rev:0:12} (target $target); work tree removed"
vs_pass
