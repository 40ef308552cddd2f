#!/usr/bin/env bash
# test_counters.sh: the perf counters against fixtures whose counts are known: context switches of a pinned ping-pong, a forked child's page faults, preemption of threads that outnumber the CPU, an event the machine cannot count, a malformed list.
. "$(dirname "$0")/lib.sh"

# ctr RUN PID_EXPR EVENT: the count of EVENT in the first thread of the process PID_EXPR picks.
ctr() { q "$T/$1.json" "[t for p in r['processes'] if $2 for t in p['threads'] if t['tid'] == p['pid']][0]['counters']['$3']"; }
# own RUN WHO KEY: what the fixture said of itself on stdout ("child pid=... nvcsw=... nivcsw=...").
own() { sed -n "s/^$2 .*$3=\([0-9]*\).*/\1/p" "$T/$1.out"; }

# ctr_pingpong: parent and child on CPU 0 pass a byte 20 000 times; each side leaves the CPU once a
# round trip. The count is the kernel's own rusage too: both sources must agree.
N=20000
pp ping "$FIXTURES/ctr_pingpong" $N
expect_eq "pingpong: poolprof exit" "$rc" 0
for who in parent child; do
  if [[ $who == parent ]]; then sel="p['pid'] == r['root_pid']"; else sel="p['pid'] != r['root_pid']"; fi
  got=$(ctr ping "$sel" perf::CONTEXT-SWITCHES)
  expect_near "pingpong: $who's context switches" "$got" $N 0.02 0
  self=$(( $(own ping $who nvcsw) + $(own ping $who nivcsw) ))
  expect_near "pingpong: $who's context switches against its own getrusage" "$got" "$self" 0.02 5
done
expect_eq "pingpong: the child was counted from its fork" \
  "$(q "$T/ping.json" "[t['counters_from_start'] for p in r['processes'] for t in p['threads']]")" "[true, true]"
expect_true "pingpong: the stage's switches per CPU-second are its count over its CPU" \
  "$(q "$T/ping.json" "str(all(abs(c['per_cpu_second'] - c['value'] / r['overall']['cpu_seconds']) <= 0.01 * c['per_cpu_second'] + 1 for c in r['overall']['counters'] if c['per_cpu_second'])).lower()")"

# ctr_faults: the child writes 10 000 of its parent's pages (copy on write) and 10 000 fresh ones.
K=10000
pp faults "$FIXTURES/ctr_faults" $K
expect_eq "faults: poolprof exit" "$rc" 0
got=$(ctr faults "p['pid'] != r['root_pid']" perf::MINOR-FAULTS)
expect_true "faults: the child's minor faults ($got) >= 2K" "$(python3 -c "print(str($got >= 2 * $K).lower())")"
expect_near "faults: the child's minor faults against its own getrusage" "$got" "$(own faults child minflt)" 0.02 20
expect_true "faults: measurement.counters lists the default set, measured" \
  "$(q "$T/faults.json" "str(all(c['measured'] and c['default'] and c['source'] == 'perf' for c in r['measurement']['counters'])).lower()")"

# burn_threads under taskset -c 0: four threads that want a CPU each share one; each is preempted
# every scheduler slice (hundreds of times a CPU-second), and the verdict says so.
taskset -c 0 "$POOLPROF" run -o "$T/burn" --json "$T/burn.json" -- "$FIXTURES/burn_threads" 4 burner 400 \
  >"$T/burn.out" 2>"$T/burn.err"
expect_eq "burner: poolprof exit" "$?" 0
B='stage(r, "burner")'
expect_true "burner: every burner thread was preempted" \
  "$(q "$T/burn.json" "str(all(t['involuntary_ctx_switches'] > 20 for p in r['processes'] for t in p['threads'] if t['name'] == 'burner')).lower()")"
expect_true "burner: over 100 context switches per CPU-second" \
  "$(q "$T/burn.json" "str([c for c in $B['counters'] if c['role'] == 'context_switches'][0]['per_cpu_second'] > 100).lower()")"
expect_true "burner: a reason cites the preemptions per CPU-second" \
  "$(q "$T/burn.json" "str(any('per CPU-second' in x for x in $B['recommendation']['reasons'])).lower()")"
expect_eq "burner: workers" "$(q "$T/burn.json" "$B['recommendation']['workers']")" 1

# An event this machine may not count: one line on stderr saying why, and a full report all the same.
pp cyc true
pmu=$(q "$T/cyc.json" "r['machine']['pmu']")
"$POOLPROF" run -o "$T/cyc2" --json "$T/cyc2.json" --counters cycles -- true >"$T/cyc2.out" 2>"$T/cyc2.err"
expect_eq "cycles: poolprof exit" "$?" 0
expect_true "cycles: a full report" "$(q "$T/cyc2.json" "str(len(r['stages']) >= 0 and r['overall']['recommendation']['model'] != '').lower()")"
C="[c for c in r['measurement']['counters'] if c['event'] == 'cycles'][0]"
if [[ $pmu == false ]]; then
  expect_eq "cycles (no PMU): lines on stderr about cycles" "$(grep -c 'cycles' "$T/cyc2.err")" 1
  expect_true "cycles (no PMU): the line says why" "$(grep -q 'counters: cycles is not counted: no PMU' "$T/cyc2.err" && echo true)"
  expect_eq "cycles (no PMU): listed, not measured" "$(q "$T/cyc2.json" "[$C['source'], $C['measured']]")" '["none", false]'
  expect_true "cycles (no PMU): the reason names the PMU" "$(q "$T/cyc2.json" "str('no PMU' in $C['reason']).lower()")"
  echo "skipped: instructions counted per thread (perf_event_open finds no PMU on this machine)"
else
  expect_eq "cycles (PMU): measured" "$(q "$T/cyc2.json" "$C['measured']")" true
  pp ins "$FIXTURES/burn_threads" 1 burner 200
  expect_true "instructions (PMU): the burner's cycles and instructions" \
    "$(q "$T/ins.json" "str(all(c['value'] > 10**7 for c in stage(r, 'burner')['counters'] if c['role'] in ('cycles', 'instructions'))).lower()")"
fi

# A malformed list is a usage error before anything runs: exit 2, one line, no run directory.
"$POOLPROF" run -o "$T/badlist" --counters 'perf::CONTEXT-SWITCHES,,cycles' -- true >"$T/bad.out" 2>"$T/bad.err"
expect_eq "bad list: exit" "$?" 2
expect_eq "bad list: one line" "$(wc -l <"$T/bad.err")" 1
expect_eq "bad list: no run directory" "$([[ -e $T/badlist ]] && echo made || echo none)" none

# A static binary (no shim): its counters are opened from outside like any other's, before its exec.
pp static "$FIXTURES/static_burn"
expect_eq "static: poolprof exit is the program's" "$rc" 7
expect_true "static: counted from its start, some context switches and faults" \
  "$(q "$T/static.json" "str([(t['counters_from_start'], t['counters']['perf::MINOR-FAULTS'] > 0) for p in r['processes'] for t in p['threads']] == [(True, True)]).lower()")"

# attach: the spinning thread is counted from when poolprof joins it, and says so.
attach_known_stack att
expect_eq "attach: exit" "$rc" 0
expect_true "attach: the spinning thread counted, from when it was found running" \
  "$(q "$T/att.json" "str(any(t['counters'] is not None and t['counters_from_start'] is False for p in r['processes'] for t in p['threads'])).lower()")"
expect_true "attach: measurement.counters says its threads were counted partially" \
  "$(q "$T/att.json" "str(all(c['threads_partial'] >= 1 for c in r['measurement']['counters'] if c['measured'])).lower()")"

# Every report above matches the schema the build generates (counters included).
for run in ping faults burn cyc2 att; do
  out=$(/usr/bin/python3 - "$(dirname "$POOLPROF")/report.schema.json" "$T/$run.json" <<'PY'
import json, sys, jsonschema
schema, report = (json.load(open(p)) for p in sys.argv[1:3])
for e in jsonschema.Draft202012Validator(schema).iter_errors(report):
    print("/".join(map(str, e.absolute_path)), e.message[:200])
PY
)
  expect_eq "$run: report matches the schema" "$out" ""
done

# --no-counters: none opened, none listed.
"$POOLPROF" run -o "$T/none" --json "$T/none.json" --no-counters -- true >/dev/null 2>&1
expect_eq "--no-counters: measurement.counters" "$(q "$T/none.json" "r['measurement']['counters']")" "[]"

finish
