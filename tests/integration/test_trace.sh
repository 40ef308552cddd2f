#!/usr/bin/env bash
# test_trace.sh: every run leaves trace.json, a valid Chrome Trace Event Format document whose thread
# states add up to what the fixtures' own clocks say (a sleeping thread's sleep, a spinning thread's
# CPU), whose threads carry report.json's perf counters (a ping-pong's context switches), also when the
# target kills itself with SIGKILL or poolprof itself is SIGKILLed mid-run.
. "$(dirname "$0")/lib.sh"

# tcheck RUNDIR [PYTHON]: the trace's shape, then PYTHON with helpers bound: ev (the events), names
# ({(pid, tid): thread name}), states(name) ({state: ms} of that thread), last_ms(name) (end of its
# last state span). Prints "ok: ..." or "FAIL: ..." lines.
tcheck() {
  python3 - "$1" "${2:-}" <<'PY'
import collections, json, sys
run, extra = sys.argv[1], sys.argv[2]
d = json.load(open(run + "/trace.json"))
rep = json.load(open(run + "/report.json"))
ev = d["traceEvents"]
fails = []
def need(cond, what):
    if not cond:
        fails.append(what)
need(isinstance(d, dict) and d.get("displayTimeUnit") == "ns", "object form with displayTimeUnit ns")
need(len(ev) > 0, "events")
for e in ev:
    ph = e.get("ph")
    for k in ("ph", "ts", "pid", "tid", "name"):
        need(k in e, f"{k} in {e}")
    need(isinstance(e.get("ts"), (int, float)), f"numeric ts in {e}")
    if ph == "X":
        need(isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0, f"dur >= 0 in {e}")
    elif ph == "M":
        need(isinstance(e.get("args", {}).get("name"), str), f"args.name in {e}")
    elif ph == "C":
        need(isinstance(e.get("args"), dict) and e["args"], f"args in {e}")
    elif ph in ("i", "I"):
        need(e.get("s") in (None, "g", "p", "t"), f"instant scope in {e}")
    elif ph not in ("B", "E", "s", "f", "t"):
        need(False, f"known phase in {e}")
# B/E balance per thread (none are written today; kept so a change that adds them is checked)
depth = collections.Counter()
for e in ev:
    if e["ph"] in ("B", "E"):
        depth[(e["pid"], e["tid"])] += 1 if e["ph"] == "B" else -1
        need(depth[(e["pid"], e["tid"])] >= 0, f"E before B on {e['pid']}/{e['tid']}")
need(all(v == 0 for v in depth.values()), "B/E balanced per thread")
# state spans: monotonic and not overlapping per thread
last = {}
for e in ev:
    if e["ph"] == "X" and e.get("cat") == "state":
        k = (e["pid"], e["tid"])
        if k in last:
            need(e["ts"] >= last[k] - 0.002, f"state spans in time order on {k}: {e['ts']} after {last[k]}")
        last[k] = e["ts"] + e["dur"]
# a thread_name event for every thread of the report, with its real tid
named = {(e["pid"], e["args"].get("tid")) for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
for p in rep["processes"]:
    for t in p.get("threads", []):
        need((p["pid"], t["tid"]) in named, f"thread_name for {p['pid']}/{t['tid']}")
    need(any(e["ph"] == "M" and e["name"] == "process_name" and e["pid"] == p["pid"] for e in ev),
         f"process_name for {p['pid']}")
    need(any(e["ph"] == "i" and e["name"] == "exit" and e["pid"] == p["pid"] for e in ev), f"exit instant for {p['pid']}")
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
# each thread's perf counters, where the trace puts them: its thread_name event and its life's X event
# (keyed by the real tid both carry); a thread no counter was open for has neither key
meta_ctr = {(e["pid"], e["args"].get("tid")): e["args"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
life_ctr = {(e["pid"], e["args"].get("tid")): e["args"] for e in ev
            if e["ph"] == "X" and e.get("cat") == "stage" and e["args"].get("source") == "thread-name"}
for p in rep["processes"]:
    for t in p.get("threads", []):
        k = (p["pid"], t["tid"])
        need(meta_ctr.get(k, {}).get("counters") == t["counters"], f"thread_name counters of {k}: {meta_ctr.get(k)} vs {t['counters']}")
        need(meta_ctr.get(k, {}).get("counters_from_start") == t["counters_from_start"], f"counters_from_start of {k}")
        if k in life_ctr:
            need(life_ctr[k].get("counters") == t["counters"], f"life slice counters of {k}: {life_ctr[k]} vs {t['counters']}")
def states(name):
    out = collections.Counter()
    for e in ev:
        if e["ph"] == "X" and e.get("cat") == "state" and names.get((e["pid"], e["tid"])) == name:
            out[e["name"]] += e["dur"] / 1000.0
    return out
def last_ms(name):
    return max([(e["ts"] + e["dur"]) / 1000.0 for e in ev if e["ph"] == "X" and e.get("cat") == "state"
                and names.get((e["pid"], e["tid"])) == name] or [0])
def near(what, got, want):
    tol = max(0.10 * want, 30.0)
    need(abs(got - want) <= tol, f"{what}: got {got:.1f} ms, want {want:.1f} ± {tol:.1f}")
    if abs(got - want) <= tol:
        print(f"ok: {what} = {got:.1f} ms (want {want:.1f} ± {tol:.1f})")
if extra:
    exec(extra)
print("\n".join("FAIL: " + f for f in fails[:20]) if fails else f"ok: {run}/trace.json: {len(ev)} events well formed")
PY
}

# count the ok:/FAIL: lines of a check into lib.sh's tally (fed by < <(...): a pipe would count in a subshell)
tally() {
  local line
  while IFS= read -r line; do
    case $line in
      ok:*) ok "${line#ok: }" ;;
      FAIL:*) bad "${line#FAIL: }" ;;
      *) echo "$line" ;;
    esac
  done
}

jsontool() {
  if python3 -m json.tool "$1/trace.json" >/dev/null; then ok "$1/trace.json loads with json.tool"; else bad "$1/trace.json: json.tool"; fi
}

# ---- two threads with known timelines: a 600 ms sleep, 400 ms of CPU ---------------------------------
pp sb "$FIXTURES/sleep_burn" 600 400
expect_eq "sleep_burn exit" "$rc" 0
slept=$(sed -n 's/^sleeper slept_ms=//p' "$T/sb.out")
cpu=$(sed -n 's/^burner cpu_ms=//p' "$T/sb.out")
jsontool "$T/sb"
tally < <(tcheck "$T/sb" "
near('sleeper: sleep spans', states('sleeper')['sleep'], $slept)
near('burner: running spans', states('burner')['running'], $cpu)
need(any(e['ph'] == 'C' and e['name'] == 'rss' for e in ev), 'an rss counter')
need(any(e['ph'] == 'i' and e['name'] == 'exec' for e in ev), 'an exec instant')
need(any(e['ph'] == 'X' and e.get('cat') == 'stage' and e['args'].get('source') == 'thread-name' and e['name'] == 'burner' for e in ev), 'the burner thread-name stage')
need(any(e['ph'] == 'X' and e.get('cat') == 'stage' and e['args'].get('source') == 'process-role' for e in ev), 'a process-role stage')
")

# --format trace to standard output is the same document as the run directory's
"$POOLPROF" report "$T/sb" --format trace=- >"$T/sb.stdout.json" 2>"$T/sb.report.err"
if cmp -s "$T/sb.stdout.json" "$T/sb/trace.json"; then ok "report --format trace=- matches trace.json"; else bad "report --format trace=- differs from trace.json"; fi

# ---- perf counters: a pinned pipe ping-pong, each side leaving the CPU once a round trip -------------
# Each thread's context switches are in its args, equal to report.json's (tcheck compares every thread's
# counters); here the figures themselves, so an empty trace and an empty report cannot agree on nothing.
pp ping "$FIXTURES/ctr_pingpong" 5000
expect_eq "ctr_pingpong exit" "$rc" 0
jsontool "$T/ping"
tally < <(tcheck "$T/ping" "
CS = 'perf::CONTEXT-SWITCHES'
for p in rep['processes']:
    for t in p['threads']:
        got = meta_ctr[(p['pid'], t['tid'])]['counters'][CS]
        need(got == t['counters'][CS], f'{p[\"pid\"]}/{t[\"tid\"]}: trace {got} vs report {t[\"counters\"][CS]}')
        need(life_ctr[(p['pid'], t['tid'])]['counters'][CS] == got, f'{t[\"tid\"]}: the life slice has the same count')
        need(abs(got - 5000) <= 100, f'{t[\"tid\"]}: about one switch per round trip: {got}')
        print(f'ok: ping-pong thread {t[\"tid\"]}: {got} context switches in trace.json, as in report.json')
need(len([t for p in rep['processes'] for t in p['threads']]) == 2, 'parent and child')
")

# --no-counters: no thread carries counters
"$POOLPROF" run -o "$T/nc" --no-counters -- "$FIXTURES/ctr_pingpong" 100 >/dev/null 2>&1
expect_eq "--no-counters: exit" "$?" 0
tally < <(tcheck "$T/nc" "
need(not any('counters' in e.get('args', {}) for e in ev), 'no counters in any event')
")

# ---- a process tree: every process named, forked, exec'd and exited ----------------------------------
pp tree "$FIXTURES/spawn_tree"
jsontool "$T/tree"
tally < <(tcheck "$T/tree" "
pids = {e['pid'] for e in ev}
need(len(pids) >= 4, f'processes of the tree: {len(pids)}')
need(sum(e['ph'] == 'i' and e['name'] == 'fork' for e in ev) == len(rep['processes']), 'a fork instant per process')
need(any(e['ph'] == 'i' and e['name'] == 'exit' and e['args'].get('signal') == 9 for e in ev), 'the SIGKILLed child exit, signal 9')
")

# ---- a lock held for a known time: the waiter's lock spans are drawn -----------------------------
pp lock "$FIXTURES/lock_hold" 2>/dev/null || true
jsontool "$T/lock"
tally < <(tcheck "$T/lock" "
need(any(e['ph'] == 'X' and e.get('cat') == 'state' and e['name'] in ('lock', 'sync') for e in ev), 'lock or sync spans')
")

# ---- the target SIGKILLs itself 500 ms after its threads start --------------------------------------
pp kill "$FIXTURES/sleep_burn" 2000 3000 500
expect_eq "sleep_burn killed: poolprof exit" "$rc" 137
jsontool "$T/kill"
tally < <(tcheck "$T/kill" "
near('killed: sleeper sleep spans up to the kill', states('sleeper')['sleep'], 500)
need(last_ms('burner') >= 400, f'burner spans up to the kill: last ends at {last_ms(\"burner\"):.0f} ms')
need(any(e['ph'] == 'i' and e['name'] == 'exit' and e['args'].get('signal') == 9 for e in ev), 'exit instant with signal 9')
")

# ---- poolprof itself SIGKILLed mid-run: 'poolprof report' merges what was flushed ---------------
"$POOLPROF" run -o "$T/pk" -- "$FIXTURES/sleep_burn" 3000 3000 >"$T/pk.out" 2>"$T/pk.err" &
ppid=$!
sleep 1.5
{ kill -9 "$ppid"; wait "$ppid"; } 2>/dev/null
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_pid"])' "$T/pk/run.json" 2>/dev/null)
[[ -n $root ]] && kill -9 "$root" 2>/dev/null
"$POOLPROF" report "$T/pk" >"$T/pk.report.out" 2>&1
jsontool "$T/pk"
tally < <(tcheck "$T/pk" "
need(last_ms('burner') >= 700, f'burner spans up to the last flush before the kill: last ends at {last_ms(\"burner\"):.0f} ms')
need(states('sleeper')['sleep'] >= 700, f'sleeper sleep spans before the kill: {states(\"sleeper\")[\"sleep\"]:.0f} ms')
")

finish
