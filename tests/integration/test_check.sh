#!/usr/bin/env bash
# test_check.sh: poolprof check end to end: a verdict that changes fails naming both, equal commands pass, every bad input has its exit status and one line naming the file, and the outputs (JSON, JUnit, GitHub) come out of a real check.
. "$(dirname "$0")/lib.sh"

W="$SRC/tests/fixtures/py/check_work.py"
PY=/usr/bin/python3

# chk NAME ARGS...: poolprof check ARGS, stdout in $T/NAME.out, stderr in $T/NAME.err, status in $rc
chk() {
  local name=$1; shift
  (cd "$T" && "$POOLPROF" check "$@") >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}

# one_line NAME WORD: stderr of NAME is one line holding WORD
one_line() {
  local n; n=$(wc -l <"$T/$1.err")
  if [[ $n -eq 1 ]] && grep -qF -- "$2" "$T/$1.err"; then ok "$1: one line naming $2"
  else bad "$1: want one line naming '$2', got $n: $(head -c 400 "$T/$1.err")"; fi
}

# ---- a verdict that changes: I/O-bound threads become GIL-bound computation under a flag ----
chk verdict --base "python3 $W 1 io" --rounds 1 --keep "$T/keep" --format json="$T/verdict.json" \
  --format junit="$T/verdict.xml" -- python3 "$W" 1 gil
expect_eq "verdict change: exit status" "$rc" 1
why=$(q "$T/verdict.json" '[c["reason"] for c in r["checks"] if c["figure"] == "recommendation" and c["stage"] == "overall"][0]')
if [[ $why == *"threads x"*"processes x"* ]]; then ok "the reason names both verdicts: $why"; else bad "verdict reason: $why"; fi
expect_eq "the terminal table names the regressed verdict" \
  "$(grep -c 'overall  *recommendation .*regressed' "$T/verdict.out")" 1
expect_eq "--keep kept both runs" "$(ls -d "$T/keep/base-1" "$T/keep/current-1" 2>/dev/null | wc -l)" 2

# the JSON output validates against the check schema, the JUnit output against the JUnit XSD
if "$PY" -c 'import jsonschema' 2>/dev/null; then
  if out=$("$PY" - "$(dirname "$POOLPROF")/check.schema.json" "$T/verdict.json" <<'PY'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
for e in errors[:5]:
    print("/".join(map(str, e.absolute_path)) or "(root)", ":", e.message[:200])
sys.exit(1 if errors else 0)
PY
  ); then ok "check JSON matches check.schema.json"; else bad "check JSON: $out"; fi
else
  bad "python3-jsonschema is not installed (scripts/setup.sh installs it)"
fi
if command -v xmllint >/dev/null; then
  if out=$(xmllint --noout --schema "$SRC/tests/data/junit.xsd" "$T/verdict.xml" 2>&1); then ok "JUnit output validates"
  else bad "JUnit output: $out"; fi
  expect_eq "JUnit: the verdict is a failure" "$(grep -c '<failure message="the verdict changed from threads x' "$T/verdict.xml")" 1
else
  bad "xmllint is not installed (scripts/setup.sh installs libxml2-utils)"
fi

# ---- saved mode, on the kept runs: the same verdict change; GitHub annotations by themselves ----
GITHUB_ACTIONS=true chk saved --baseline "$T/keep/base-1" "$T/keep/current-1/report.json"
expect_eq "saved reports: exit status" "$rc" 1
expect_eq "GITHUB_ACTIONS=true: one ::error for the verdict" "$(grep -c '^::error .*recommendation' "$T/saved.out")" 1
chk same --baseline "$T/keep/base-1" "$T/keep/base-1"
expect_eq "a report against itself: exit status" "$rc" 0

# ---- machines that differ: time figures inconclusive; --strict exits 4 ----
"$PY" - "$T/keep/base-1/report.json" "$T/other.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["machine"]["cpu_model"] = "Another CPU"
json.dump(d, open(sys.argv[2], "w"))
PY
chk other --baseline "$T/keep/base-1" "$T/other.json"
expect_eq "another machine: exit status (inconclusive warns)" "$rc" 0
expect_eq "another machine: said" "$(grep -m1 -c 'different machines' "$T/other.out")" 1
chk strict --strict --baseline "$T/keep/base-1" "$T/other.json"
expect_eq "another machine with --strict: exit status" "$rc" 4

# ---- --confirm: a regression is measured again before the gate fails; a real one is found again ----
chk confirm --confirm 1 --base "python3 $W 1 io" --rounds 1 --format json="$T/confirm.json" -- python3 "$W" 1 gil
expect_eq "--confirm 1 on a changed verdict: exit status" "$rc" 1
expect_eq "--confirm 1: one more round of each side measured" "$(q "$T/confirm.json" 'r["confirm"]["rounds_added"]')" 1

# ---- the same command on both sides passes ----
chk equal --base "python3 $W 1 serial" --rounds 2 -- python3 "$W" 1 serial
expect_eq "the same command twice: exit status" "$rc" 0

# ---- bad input: one line, its exit status ----
: >"$T/empty.json"
echo '{"schema": "poolprof.report/9"}' >"$T/wrong.json"
echo '{"schema": ' >"$T/broken.json"
for f in empty wrong broken; do
  chk "bl_$f" --baseline "$T/$f.json" "$T/keep/base-1"
  expect_eq "a $f baseline: exit status" "$rc" 2
  one_line "bl_$f" "$f.json"
done
chk bl_missing --baseline "$T/nosuch.json" "$T/keep/base-1"
expect_eq "a missing baseline: exit status" "$rc" 2
one_line bl_missing nosuch.json
chk cur_broken --baseline "$T/keep/base-1" "$T/broken.json"
expect_eq "a broken current report: exit status" "$rc" 2
one_line cur_broken broken.json

echo '{"rules": [{"figure": "wal_seconds", "max": 1}]}' >"$T/bad-config.json"
chk cfg --config "$T/bad-config.json" --baseline "$T/keep/base-1" "$T/keep/base-1"
expect_eq "a thresholds file naming no figure: exit status" "$rc" 2
one_line cfg "bad-config.json: rules[0].figure"
echo '{"rules": [' >"$T/poolprof-check.json"
chk cfg_default --baseline "$T/keep/base-1" "$T/keep/base-1"
expect_eq "./poolprof-check.json that is no JSON: exit status" "$rc" 2
one_line cfg_default "poolprof-check.json:"
rm -f "$T/poolprof-check.json"

chk fails --base "python3 $W 1 serial" --rounds 1 -- python3 -c 'raise SystemExit(3)'
expect_eq "a failing command: exit status" "$rc" 3
one_line fails "the current command failed in round 1: exit status 3"
chk notfound --base "no-such-program-xyz" --rounds 1 -- true
expect_eq "a command not found: exit status" "$rc" 3
one_line notfound "no-such-program-xyz"
chk unknown --no-such-option --base true -- true
expect_eq "an unknown option: exit status" "$rc" 2
chk late_option --baseline "$T/keep/base-1" "$T/keep/base-1" --strict
expect_eq "an option after the current reports: exit status" "$rc" 2
one_line late_option "options come before the current reports"
chk both --base true --baseline "$T/keep/base-1" -- true
expect_eq "--base with --baseline: exit status" "$rc" 2
chk confirm_saved --confirm 2 --baseline "$T/keep/base-1" "$T/keep/base-1"
expect_eq "--confirm with saved reports: exit status" "$rc" 2
chk threshold --threshold wall_seconds=abc --base true -- true
expect_eq "a bad --threshold: exit status" "$rc" 2
chk quote --base "python3 'unbalanced" -- true
expect_eq "--base with unbalanced quotes: exit status" "$rc" 2

# ---- a stop signal: the running profile is stopped, the scratch runs removed, 128+N ----
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" "$POOLPROF" check --base 'sleep 30' --rounds 1 -- sleep 30 >"$T/stop.out" 2>"$T/stop.err" &
pid=$!
for _ in $(seq 50); do [[ -n $(ls "$T/tmp") ]] && break; sleep 0.1; done
sleep 1
kill -TERM "$pid"
wait "$pid"; rc=$?
expect_eq "SIGTERM during the rounds: exit status" "$rc" 143
one_line stop "stopped by signal 15"
expect_eq "SIGTERM: the scratch directory is removed" "$(ls "$T/tmp" | wc -l)" 0

# ---- help documents the rules and every exit status ----
"$POOLPROF" help check | tr '\n' ' ' | tr -s ' ' >"$T/help.out"
for word in "Mann-Whitney" "bootstrap" "most" "workers_step" "ignore" "4 with --strict" "3 when" "128+N" "junit" "github"; do
  if grep -qF -- "$word" "$T/help.out"; then ok "help check mentions $word"; else bad "help check lacks $word"; fi
done

finish
