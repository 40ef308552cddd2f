#!/usr/bin/env bash
# test_cli.sh: the command line: options before and after PID and RUNDIR, --format for run and report, output paths
# refused before the target starts, help generated from every option table, one line naming a bad value, a
# directory that is not a run.
. "$(dirname "$0")/lib.sh"

lines() { wc -l <"$1" | tr -d ' '; }
absent() { [[ -e $1 ]] && echo present || echo absent; }

# folded FILE: "true" when every line is "frame;frame;... COUNT" and one stack is the fixture's worker
folded() {
  python3 - "$1" <<'PY'
import sys
rows = [l.rstrip("\n").rsplit(" ", 1) for l in open(sys.argv[1])]
ok = rows and all(len(r) == 2 and r[1].isdigit() and r[0] for r in rows) and any("worker" in r[0] for r in rows)
print("true" if ok else "false")
PY
}

# ---- run --format, repeatable, and --json as its alias ---------------------------------------------------------
"$POOLPROF" run -o "$T/fmt" --format json="$T/r.json" --format folded="$T/s.folded" -- \
  "$FIXTURES/burn_threads" 1 burner 300 >"$T/fmt.out" 2>"$T/fmt.err"
expect_eq "run with two --format FORMAT=PATH: exit 0" "$?" 0
expect_eq "--format json=PATH: a report" "$(q "$T/r.json" 'r["schema"]')" poolprof.report/1
expect_eq "--format json=PATH: of this run" "$(q "$T/r.json" 'r["command"][2]')" burner
expect_true "--format folded=PATH: folded stacks with the worker" "$(folded "$T/s.folded")"
expect_true "with PATHs, the terminal summary stays on stderr" "$(grep -q '^overall' "$T/fmt.err" && echo true)"
expect_eq "nothing of poolprof's on stdout" "$(grep -cE '^(poolprof|overall|report:)|schema' "$T/fmt.out")" 0

"$POOLPROF" run -o "$T/alias" --json "$T/alias.json" -- true >/dev/null 2>&1
expect_eq "--json PATH still writes the report" "$(q "$T/alias.json" 'r["schema"]')" poolprof.report/1

"$POOLPROF" run -o "$T/nopath" --format json -- true >"$T/nopath.out" 2>"$T/nopath.err"
expect_eq "--format json without PATH: the JSON on stderr in place of the summary" \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["schema"])' "$T/nopath.err" 2>&1)" poolprof.report/1
expect_eq "--format json without PATH: stdout untouched" "$(cat "$T/nopath.out")" ""

# ---- report: --format before or after RUNDIR -------------------------------------------------------------------
"$POOLPROF" report --format terminal "$T/fmt" >"$T/rep1.out" 2>"$T/rep1.err"
expect_eq "report --format terminal RUNDIR: exit 0" "$?" 0
expect_true "report --format terminal RUNDIR: the summary on stdout" "$(grep -q '^overall' "$T/rep1.out" && echo true)"
"$POOLPROF" report "$T/fmt" --format json >"$T/rep2.out" 2>"$T/rep2.err"
expect_eq "report RUNDIR --format json: exit 0" "$?" 0
expect_eq "report RUNDIR --format json: the JSON on stdout" "$(q "$T/rep2.out" 'r["schema"]')" poolprof.report/1
"$POOLPROF" report "$T/fmt" --format rss-csv="$T/m.csv" --format json=- >"$T/rep3.out" 2>"$T/rep3.err"
expect_eq "report --format rss-csv=PATH --format json=-: exit 0" "$?" 0
expect_eq "rss-csv=PATH: the CSV header" "$(head -n 1 "$T/m.csv")" "t_seconds,pid,rss_bytes,pss_bytes"
expect_eq "json=-: on stdout, in place of the summary" "$(q "$T/rep3.out" 'r["schema"]')" poolprof.report/1
"$POOLPROF" report -- "$T/fmt" >/dev/null 2>&1
expect_eq "report -- RUNDIR: exit 0" "$?" 0

# ---- attach: options before and after PID ----------------------------------------------------------------------
"$FIXTURES/states" sleep 8 >/dev/null &
tp=$!
sleep 0.3
"$POOLPROF" attach "$tp" --duration 0.5 -o "$T/att-after" >"$T/att1.out" 2>"$T/att1.err"
expect_eq "attach PID --duration S: exit 0" "$?" 0
expect_eq "attach PID --duration S: a report" "$(q "$T/att-after/report.json" 'r["schema"]')" poolprof.report/1
"$POOLPROF" attach --duration=0.5 -o "$T/att-before" "$tp" --format json="$T/att.json" >"$T/att2.out" 2>"$T/att2.err"
expect_eq "attach --duration=S PID --format json=PATH: exit 0" "$?" 0
expect_eq "attach --format json=PATH: the report there" "$(q "$T/att.json" 'r["root_pid"]')" "$tp"
"$POOLPROF" attach "$tp" "$tp" >/dev/null 2>"$T/att3.err"
expect_eq "attach PID PID: exit 2" "$?" 2
expect_eq "attach PID PID: one line" "$(lines "$T/att3.err")" 1

# ---- an output that cannot be written is refused before the target starts ----------------------------------
# Each target would create a file; none may exist afterwards, nor a run directory.
check_refused() { # WHAT RC ERRFILE RAN RUNDIR OPTION VALUE
  expect_eq "$1: exit 2" "$2" 2
  expect_eq "$1: one line" "$(lines "$3")" 1
  expect_true "$1: names the option and the value" "$(grep -qF -- "$6 '$7'" "$3" && echo true)"
  expect_eq "$1: the target did not run" "$(absent "$4")" absent
  expect_eq "$1: no run directory left" "$(absent "$5")" absent
}
"$POOLPROF" run -o "$T/nw1" --json /nonexistent/x.json -- touch "$T/ran1" 2>"$T/nw1.err"
check_refused "run --json /nonexistent/x.json" "$?" "$T/nw1.err" "$T/ran1" "$T/nw1" --json /nonexistent/x.json
"$POOLPROF" run -o "$T/nw2" --format json="$T/r2.json" --format folded=/nonexistent/s.folded -- touch "$T/ran2" 2>"$T/nw2.err"
check_refused "run --format folded=/nonexistent/..." "$?" "$T/nw2.err" "$T/ran2" "$T/nw2" --format folded=/nonexistent/s.folded
mkdir -p "$T/adir"
"$POOLPROF" run -o "$T/nw3" --format rss-csv="$T/adir" -- touch "$T/ran3" 2>"$T/nw3.err"
check_refused "run --format rss-csv=DIRECTORY" "$?" "$T/nw3.err" "$T/ran3" "$T/nw3" --format "rss-csv=$T/adir"
"$POOLPROF" run -o "$T/nw4" --format json="$T/same" --format folded="$T/same" -- touch "$T/ran4" 2>"$T/nw4.err"
check_refused "run: two formats to one PATH" "$?" "$T/nw4.err" "$T/ran4" "$T/nw4" --format "folded=$T/same"
"$POOLPROF" attach --json /nonexistent/a.json -o "$T/nw5" "$tp" 2>"$T/nw5.err"
check_refused "attach --json /nonexistent/a.json" "$?" "$T/nw5.err" "$T/nothing" "$T/nw5" --json /nonexistent/a.json
"$POOLPROF" sweep --workers 1 --no-profile --json /nonexistent/s.json -- touch "$T/ran6" 2>"$T/nw6.err"
check_refused "sweep --json /nonexistent/s.json" "$?" "$T/nw6.err" "$T/ran6" "$T/nothing" --json /nonexistent/s.json
cp "$T/fmt/report.json" "$T/before.json"
"$POOLPROF" report "$T/fmt" --format json=/nonexistent/x.json >/dev/null 2>"$T/nw7.err"
check_refused "report --format json=/nonexistent/x.json" "$?" "$T/nw7.err" "$T/nothing" "$T/nothing" --format json=/nonexistent/x.json
expect_eq "report refused: RUNDIR's report left as it was" "$(cmp -s "$T/before.json" "$T/fmt/report.json" && echo same)" same
kill "$tp" 2>/dev/null; wait "$tp" 2>/dev/null

# ---- help: generated from the option tables; every option of every command, as its manual lists them -----
"$POOLPROF" help >"$T/help.out" 2>&1
expect_eq "help: exit 0" "$?" 0
for word in run attach report sweep help version terminal json folded folded-offcpu rss-csv speedscope 127 128+N "CMD's own"; do
  expect_true "help lists '$word'" "$(grep -qF -- "$word" "$T/help.out" && echo true)"
done
for cmd in run attach report sweep; do
  "$POOLPROF" help "$cmd" >"$T/help-$cmd.out" 2>&1
  expect_eq "help $cmd: exit 0" "$?" 0
  "$POOLPROF" "$cmd" --help >"$T/dash-$cmd.out" 2>&1
  expect_eq "$cmd --help is help $cmd" "$(cmp -s "$T/help-$cmd.out" "$T/dash-$cmd.out" && echo same)" same
  # Every option the manual lists (lines "\--name=..." or "-o *X*, \--name") is in the help, and no other.
  manual=$(python3 - "$SRC/docs/poolprof-$cmd.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
opts = text.split("\nOPTIONS\n", 1)[1].split("\nOUTPUT\n", 1)[0]
print(" ".join(sorted(set(re.findall(r"^(?:-\w(?: \*?\w+\*?)?, )?\\--([a-z-]+)", opts, re.M)))))
PY
)
  helped=$(grep -oE -- '^ +(-[a-z], )?--[a-z-]+' "$T/help-$cmd.out" | sed 's/.*--//' | sort -u | tr '\n' ' ' | sed 's/ $//')
  expect_eq "help $cmd: the options of docs/poolprof-$cmd.md" "$helped" "$manual"
  expect_true "help $cmd: more than the usage line" "$([[ $(lines "$T/help-$cmd.out") -gt 10 ]] && echo true)"
done
for cmd in run attach report; do
  expect_true "help $cmd: lists the formats" "$(grep -q '^  folded-offcpu' "$T/help-$cmd.out" && echo true)"
done

# ---- a bad value of any option: exit 2, one line naming the option and the value ----------------------------
bad_value() { # COMMAND-WORDS... ; the last two words are the option and the value
  local n=$# opt=${@: -2:1} val=${@: -1}
  "$POOLPROF" "$@" >/dev/null 2>"$T/bad.err"
  local rc=$?
  expect_eq "$*: exit 2" "$rc" 2
  expect_eq "$*: one line" "$(lines "$T/bad.err")" 1
  expect_true "$*: names $opt '$val'" "$(grep -qF -- "$opt '$val'" "$T/bad.err" && grep -q "^poolprof: $1: " "$T/bad.err" && echo true)"
}
for v in 0 60001 abc 1.5 -3 ""; do bad_value run --interval "$v"; done
for v in 0 10001 x; do bad_value run --rate "$v"; done
bad_value run --stacks perl
bad_value run --format xml
bad_value attach 1 --interval 0
bad_value attach 1 --rate 0
bad_value attach 1 --duration 0
bad_value attach 1 --duration -1
bad_value attach 1 --duration soon
bad_value attach --stacks perl
bad_value report --format svg
for v in 0 2,2 x 1,,2; do bad_value sweep --workers "$v"; done
bad_value sweep --repeat 0
bad_value sweep --repeat 1001
bad_value sweep --seed -1
bad_value sweep --profile-at 0
bad_value sweep --timeout 0
bad_value sweep --timeout never
bad_value sweep --model perl
"$POOLPROF" run --interval 0 -- touch "$T/ran-bad" 2>/dev/null
expect_eq "a bad value: the target did not run" "$(absent "$T/ran-bad")" absent

# An unknown option or a missing value: one line, with the usage.
"$POOLPROF" report --frobnicate "$T/fmt" 2>"$T/unk.err"
expect_eq "unknown option: exit 2" "$?" 2
expect_true "unknown option: one line with the usage" "$([[ $(lines "$T/unk.err") == 1 ]] && grep -q 'usage: poolprof report' "$T/unk.err" && echo true)"
"$POOLPROF" attach 1 --rate 2>"$T/miss.err"
expect_eq "missing value: exit 2" "$?" 2
expect_true "missing value: one line naming the option" "$([[ $(lines "$T/miss.err") == 1 ]] && grep -q "option '--rate' needs a value" "$T/miss.err" && echo true)"

# ---- report on what is not a run directory ------------------------------------------------------------------
mkdir -p "$T/notrun"
"$POOLPROF" report "$T/notrun" >/dev/null 2>"$T/nr.err"
expect_eq "report on a directory without run.json: exit 1" "$?" 1
expect_eq "report on a directory without run.json: one line" "$(lines "$T/nr.err")" 1
expect_true "says it is not a poolprof run directory" "$(grep -q "^poolprof: report: $T/notrun: not a poolprof run directory" "$T/nr.err" && echo true)"
"$POOLPROF" report "$T/notrun/missing" >/dev/null 2>"$T/nr2.err"
expect_eq "report on a missing path: exit 1" "$?" 1
expect_true "report on a missing path: says so" "$(grep -q 'no such file or directory' "$T/nr2.err" && echo true)"
"$POOLPROF" report "$T/r.json" >/dev/null 2>"$T/nr3.err"
expect_eq "report on a file: exit 1" "$?" 1
expect_true "report on a file: not a directory" "$(grep -q 'not a directory' "$T/nr3.err" && echo true)"
finish
