#!/usr/bin/env bash
# test_bad_input.sh: bad invocations get one line on stderr ("poolprof: CMD: ...") and the documented exit status, before any target starts.
. "$(dirname "$0")/lib.sh"

lines() { wc -l <"$1" | tr -d ' '; }

"$POOLPROF" run -o "$T/a" 2>"$T/e1"; rc=$?
expect_eq "no command: exit 127" "$rc" 127
expect_eq "no command: one line" "$(lines "$T/e1")" 1

"$POOLPROF" run -o "$T/b" -- /nonexistent/prog 2>"$T/e2"; rc=$?
expect_eq "missing command: exit 127" "$rc" 127
expect_eq "missing command: one line" "$(lines "$T/e2")" 1

"$POOLPROF" run -o "$T/c" -- no-such-command-poolprof 2>"$T/e3"; rc=$?
expect_eq "command not on PATH: exit 127" "$rc" 127

printf 'not a program' >"$T/plainfile"; chmod 644 "$T/plainfile"
"$POOLPROF" run -o "$T/d" -- "$T/plainfile" 2>"$T/e4"; rc=$?
expect_eq "not executable: exit 127" "$rc" 127
expect_eq "not executable: one line" "$(lines "$T/e4")" 1

"$POOLPROF" run --no-such-option -- true 2>"$T/e5"; rc=$?
expect_eq "unknown option: exit 2" "$rc" 2
grep -qi usage "$T/e5" && ok "unknown option prints usage" || bad "unknown option prints usage"
expect_eq "unknown option: one line" "$(lines "$T/e5")" 1
expect_eq "unknown option: 'poolprof: run: ' and the option" "$(grep -c "^poolprof: run: unknown option '--no-such-option'" "$T/e5")" 1

"$POOLPROF" frobnicate 2>"$T/e9"; rc=$?
expect_eq "unknown command: exit 2" "$rc" 2
expect_eq "unknown command: one line" "$(lines "$T/e9")" 1

"$POOLPROF" run -o /dev/null/run -- touch "$T/should-not-exist" 2>"$T/e6"; rc=$?
expect_eq "unwritable RUNDIR: exit 2" "$rc" 2
expect_eq "unwritable RUNDIR: one line naming -o" "$(grep -c "^poolprof: run: -o '/dev/null/run': " "$T/e6")" 1
expect_eq "unwritable RUNDIR: target not started" "$([[ -e $T/should-not-exist ]] && echo started || echo not-started)" not-started

mkdir -p "$T/full"; echo x >"$T/full/keep"
"$POOLPROF" run -o "$T/full" -- true 2>"$T/e7"; rc=$?
expect_eq "non-empty RUNDIR refused: exit 2" "$rc" 2
expect_true "non-empty RUNDIR refused: says --force" "$(grep -q 'not empty (use --force' "$T/e7" && echo true)"
"$POOLPROF" run --force -o "$T/full" -- true 2>"$T/e8"; rc=$?
expect_eq "non-empty RUNDIR with --force: exit 0" "$rc" 0

# sweep: a command no count changes (no {workers} in any argument) is refused unless --force.
"$POOLPROF" sweep --workers 1,2 -- touch "$T/sweep-ran" >"$T/o10" 2>"$T/e10"; rc=$?
expect_eq "sweep without {workers}: exit 2" "$rc" 2
expect_eq "sweep without {workers}: one line, 'poolprof: sweep: '" "$(lines "$T/e10") $(grep -c '^poolprof: sweep: no {workers} in the command' "$T/e10")" "1 1"
expect_eq "sweep without {workers}: target not started" "$([[ -e $T/sweep-ran ]] && echo started || echo not-started)" not-started
finish
