#!/usr/bin/env bash
# test_counters_cmd.sh: `poolprof counters` lists the default set as this machine counts it, and with --all every event libpfm4 knows here, hardware ones without a PMU as not available with the reason.
. "$(dirname "$0")/lib.sh"

# row FILE NAME: the table's row of NAME as "KIND AVAILABLE NOTE..." (columns split on runs of spaces)
row() { awk -v n="$2" '$1 == n { $1 = ""; sub(/^ +/, ""); print; exit }' "$1"; }

"$POOLPROF" counters >"$T/c.out" 2>"$T/c.err"
expect_eq "counters: exit 0" "$?" 0
expect_eq "counters: nothing on stderr" "$(cat "$T/c.err")" ""
expect_true "the table's header" "$(grep -qE '^NAME +KIND +AVAILABLE +NOTE$' "$T/c.out" && echo true)"
expect_eq "perf::CONTEXT-SWITCHES: software, available, of the default set" \
  "$(row "$T/c.out" perf::CONTEXT-SWITCHES)" "software yes default"
expect_eq "the default set comes first" "$(grep -A1 '^NAME' "$T/c.out" | tail -1 | awk '{print $1}')" \
  perf::CONTEXT-SWITCHES
for ev in perf::CPU-MIGRATIONS perf::MINOR-FAULTS perf::MAJOR-FAULTS; do
  expect_true "$ev: of the default set" "$(row "$T/c.out" "$ev" | grep -q ' default' && echo true)"
done
expect_eq "without --all, only what opens (a default row may say no, and why)" \
  "$(awk '/^NAME/ { f = 1; next } f && NF >= 3 && $3 == "no" && $4 !~ /^default/' "$T/c.out" | wc -l)" 0
expect_true "the columns line up: AVAILABLE at one column in every row" "$(python3 - "$T/c.out" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
h = next(i for i, l in enumerate(lines) if l.startswith("NAME"))
col = lines[h].index("AVAILABLE")
rows = [l for l in lines[h + 1:] if l.strip()][:-1]  # the last line is the summary
print("true" if rows and all(r[col - 2:col] == "  " and r[col] != " " for r in rows) else "false")
PY
)"

"$POOLPROF" counters --all >"$T/all.out" 2>&1
expect_eq "counters --all: exit 0" "$?" 0
cycles=$(row "$T/all.out" perf::CYCLES)
expect_true "--all lists perf::CYCLES, a hardware event" "$([[ $cycles == hardware* ]] && echo true)"
if grep -q '^no hardware PMU here: perf::CYCLES: ' "$T/all.out"; then
  expect_true "no PMU: cycles not available, and why" "$([[ $cycles == "hardware no no PMU counts it here (perf_event_open: E"* ]] && echo true)"
  expect_eq "no PMU: the hardware defaults are not in the default set" "$(row "$T/c.out" perf::CYCLES)" ""
else
  expect_true "a PMU: cycles available, of the default set" "$([[ $cycles == "hardware yes default"* ]] && echo true)"
fi
expect_true "--all lists more than the available ones" "$([[ $(wc -l <"$T/all.out") -gt $(wc -l <"$T/c.out") ]] && echo true)"

"$POOLPROF" counters --bogus >/dev/null 2>"$T/bad.err"
expect_eq "an unknown option: exit 2" "$?" 2
"$POOLPROF" help counters >"$T/help.out" 2>&1
expect_true "help counters names --all" "$(grep -q -- '--all' "$T/help.out" && echo true)"

finish
