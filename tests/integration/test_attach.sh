#!/usr/bin/env bash
# test_attach.sh: poolprof attach samples a running process and detaches leaving it as it was (by duration, by
# its end, by Ctrl-C, while it churns threads and processes); a SIGKILLed poolprof (attach or run) leaves its
# target running to its own end, untraced, and a readable run directory; an unknown pid is a usage error.
. "$(dirname "$0")/lib.sh"
SP="$(dirname "$0")/samprec.py"
sp() { python3 "$SP" "$T/$1" "$2"; }

# untraced PID: 0 when no task of PID (and of its children) has a tracer, else the count of traced tasks
untraced() {
  local n=0 f p
  for f in /proc/"$1"/task/*/status $(for p in $(pgrep -P "$1"); do echo /proc/$p/task/*/status; done); do
    [[ -r $f ]] || continue
    grep -q '^TracerPid:[[:space:]]*0$' "$f" 2>/dev/null || { [[ -e $f ]] && n=$((n+1)); }
  done
  echo $n
}

# wait_gone PID [TENTHS]: until /proc/PID is gone or a zombie (at most TENTHS/10 s, default 15 s)
wait_gone() {
  for _ in $(seq "${2:-150}"); do
    [[ -e /proc/$1 ]] || return 0
    [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---- a CPU-bound python program, attach for 1 s ---------------------------------------------
python3 -c '
import time
t = time.time()
x = 0
while time.time() - t < 3.0:
    x += 1
print("py done")
raise SystemExit(5)' >"$T/py.out" &
tp=$!
sleep 0.3
"$POOLPROF" attach --duration 1 --rate 200 -o "$T/py" "$tp" >"$T/py.att.out" 2>"$T/py.att.err"
expect_eq "attach python: poolprof exits 0" "$?" 0
[[ -s $T/py/report.json ]] && ok "attach python: report.json written" || bad "attach python: report.json written"
[[ -s $T/py/sampler.rec ]] && ok "attach python: sampler.rec written" || bad "attach python: sampler.rec written"
expect_eq "attach python: ptrace in use" "$(sp py "S.O['ptrace']")" 1
expect_eq "attach python: target is untraced after detach (TracerPid 0)" "$(untraced $tp)" 0
echo "# py: $(sp py "{k: round(v, 3) for k, v in states($tp).items()}")"
expect_near "attach python: sampled seconds of the main thread ~ the 1 s attached" "$(sp py "round(total($tp), 3)")" 1.0 0.15 0.12
expect_true "attach python: running + runq >= 0.9 of them (CPU-bound loop)" \
  "$(sp py "str(share($tp, 'running') + share($tp, 'runq') >= 0.9).lower()")"
expect_eq "attach python: P line says CPython 3.11" "$(sp py "[p['python'] for p in S.P if p['pid'] == $tp]")" "[311]"
wait $tp; rc=$?
expect_eq "attach python: target ends with its own status" "$rc" 5
expect_eq "attach python: target output" "$(cat "$T/py.out")" "py done"

# ---- a zombie leader (main called pthread_exit), attached until it ends --------------------------
"$FIXTURES/zombie_leader" 1500 >"$T/zl.out" &
tp=$!
sleep 0.3
"$POOLPROF" attach --rate 200 -o "$T/zl" "$tp" >/dev/null 2>"$T/zl.att.err"
expect_eq "attach zombie leader: poolprof exits 0" "$?" 0
expect_eq "attach zombie leader: followed with ptrace though the leader cannot be seized" "$(sp zl "S.O['ptrace']")" 1
expect_eq "attach zombie leader: stayed attached to the end: X status 7 << 8" "$(sp zl "S.X.get($tp)")" 1792
expect_near "attach zombie leader: worker ') a b' sampled running ~1.2 s" \
  "$(sp zl "round(states(') a b').get('running', 0) + states(') a b').get('runq', 0), 3)")" 1.2 0.2 0.15
wait $tp; rc=$?
expect_eq "attach zombie leader: target exit" "$rc" 7

# ---- detach while the target churns threads and processes ---------------------------------------
"$FIXTURES/churn" loop 2.5 >"$T/churn.out" &
tp=$!
sleep 0.3
"$POOLPROF" attach --duration 1 --rate 200 -o "$T/churn" "$tp" >/dev/null 2>"$T/churn.att.err"
expect_eq "attach churn: poolprof exits 0" "$?" 0
expect_eq "attach churn: every task untraced right after detach" "$(untraced $tp)" 0
expect_true "attach churn: forked children were followed (P lines)" "$(sp churn "str(len(S.pids) > 5).lower()")"
wait $tp; rc=$?
expect_eq "attach churn: target exit" "$rc" 0
expect_eq "attach churn: every round's threads and child statuses right" "$(cat "$T/churn.out")" "rounds ok"

# ---- Ctrl-C (SIGINT to poolprof, not to the target) --------------------------------------------
"$FIXTURES/states" sleep 2.5 >"$T/int.out" &
tp=$!
sleep 0.3
"$POOLPROF" attach --rate 200 -o "$T/int" "$tp" >/dev/null 2>"$T/int.att.err" &
pp=$!
sleep 1
kill -INT $pp
wait $pp; rc=$?
expect_eq "attach SIGINT: poolprof exits 0" "$rc" 0
[[ -s $T/int/report.json ]] && ok "attach SIGINT: report.json written" || bad "attach SIGINT: report.json written"
expect_eq "attach SIGINT: target untraced" "$(untraced $tp)" 0
[[ -e /proc/$tp ]] && ok "attach SIGINT: target still running" || bad "attach SIGINT: target still running"
expect_eq "attach SIGINT: the sleeper was sampled asleep" "$(sp int "dominant('sleeper')")" sleep
wait $tp; rc=$?
expect_eq "attach SIGINT: target exit" "$rc" 0
expect_near "attach SIGINT: target's sleep undisturbed (wall ms)" \
  "$(awk -F'wall_ms=' '/^sleeper/ {print $2}' "$T/int.out")" 2500 0.05 60

# ---- SIGKILL of poolprof attach while it churns ----------------------------------------------------
"$FIXTURES/churn" loop 2.5 >"$T/kill.out" &
tp=$!
sleep 0.3
"$POOLPROF" attach --rate 200 -o "$T/kill" "$tp" >/dev/null 2>&1 &
pp=$!
sleep 1
kill -KILL $pp
wait $pp 2>/dev/null
sleep 0.2
expect_eq "attach SIGKILL: target untraced once poolprof is dead" "$(untraced $tp)" 0
wait $tp; rc=$?
expect_eq "attach SIGKILL: target exit" "$rc" 0
expect_eq "attach SIGKILL: target output" "$(cat "$T/kill.out")" "rounds ok"
expect_true "attach SIGKILL: sampler.rec parses, with samples of the target" "$(sp kill "str(len(S.ns) > 0).lower()")"
expect_true "attach SIGKILL: monitor.rec parses, with the target's threads" "$(sp kill "str(len(S.names) > 0).lower()")"
"$POOLPROF" report "$T/kill" >"$T/kill.report" 2>&1 && ok "attach SIGKILL: the run can still be reported" \
  || bad "attach SIGKILL: the run can still be reported: $(tail -1 "$T/kill.report")"

# ---- SIGKILL of poolprof run: the tree continues to its own end ----------------------------------
"$POOLPROF" run --no-preload --rate 200 -o "$T/runkill" -- \
  sh -c "\"$FIXTURES/churn\" loop 2; echo rc=\$?; \"$FIXTURES/states\" sleep 0.5 >/dev/null; exit 9" >"$T/runkill.out" 2>/dev/null &
pp=$!
sleep 1
# The root from run.json (pids wrap at pid_max: the smallest pid need not be the root).
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_pid"])' "$T/runkill/run.json")
kill -KILL $pp
wait $pp 2>/dev/null
sleep 0.2
expect_eq "run SIGKILL: the root and its children untraced" "$(untraced "$root")" 0
wait_gone "$root" && ok "run SIGKILL: the tree ran to its end" || bad "run SIGKILL: the tree ran to its end"
expect_eq "run SIGKILL: output of the tree, with the churn's exit status" "$(cat "$T/runkill.out")" "rounds ok
rc=0"
expect_true "run SIGKILL: sampler.rec parses, with samples" "$(sp runkill "str(len(S.ns) > 0).lower()")"
"$POOLPROF" report "$T/runkill" >"$T/runkill.report" 2>&1 && ok "run SIGKILL: the run can still be reported" \
  || bad "run SIGKILL: the run can still be reported: $(tail -1 "$T/runkill.report")"

# ---- no such process -------------------------------------------------------------------------------
nopid=4000000
while [[ -e /proc/$nopid ]]; do nopid=$((nopid + 1)); done
"$POOLPROF" attach -o "$T/none" "$nopid" >"$T/none.out" 2>"$T/none.err"
expect_eq "attach to no process: exit 2" "$?" 2
expect_eq "attach to no process: one-line error" "$(wc -l <"$T/none.err")" 1
echo "# $(cat "$T/none.err")"
finish
