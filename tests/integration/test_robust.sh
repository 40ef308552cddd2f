#!/usr/bin/env bash
# test_robust.sh: a target that closes every descriptor, a SIGKILLed target, a killed poolprof: the run stays readable.
. "$(dirname "$0")/lib.sh"

"$FIXTURES/close_all" >"$T/plain.out"
pp closed "$FIXTURES/close_all"
expect_eq "close-all exit" "$rc" 0
expect_eq "close-all output unchanged" "$(cat "$T/closed.out")" "$(cat "$T/plain.out")"
expect_near "thread started after closing all fds is still measured" \
  "$(q $T/closed.json 'stage(r, "after-close")["cpu_seconds"]')" 0.2 0.2 0.05

# python os.closerange then threads
pp pyclose /usr/bin/python3 -c 'import os, threading, time
os.closerange(3, 65536)
def w():
    t = time.thread_time()
    while time.thread_time() - t < 0.15: pass
th = [threading.Thread(target=w) for _ in range(2)]
[x.start() for x in th]; [x.join() for x in th]
print("ok")'
expect_eq "python closerange exit" "$rc" 0
expect_eq "python closerange output" "$(cat "$T/pyclose.out")" ok
expect_near "python closerange CPU still measured" "$(q $T/pyclose.json 'r["overall"]["cpu_seconds"]')" 0.33 0.3 0.1

# the target is SIGKILLed from outside mid-run: poolprof reports it killed, exits 137, report readable
"$POOLPROF" run -o "$T/killed" --json "$T/killed.json" -- "$FIXTURES/burn_threads" 1 victim 5000 >/dev/null 2>&1 &
pp_pid=$!
for _ in $(seq 100); do target=$(pgrep -f "burn_threads 1 victim" | grep -v "^$pp_pid$" | head -1); [[ -n $target ]] && break; sleep 0.05; done
sleep 0.5
kill -9 "$target"
wait $pp_pid; rc=$?
expect_eq "killed target: poolprof exits 137" "$rc" 137
expect_eq "killed target: report says killed" "$(q $T/killed.json "r['processes'][0]['exit']['how']")" killed
expect_near "killed target: CPU up to the kill" "$(q $T/killed.json 'r["overall"]["cpu_seconds"]')" 0.5 0.6 0.25

# poolprof itself is SIGKILLed: the target finishes, the run directory keeps what was recorded
"$POOLPROF" run -o "$T/orphan" -- "$FIXTURES/burn_threads" 1 survivor 600 >"$T/orphan.out" 2>/dev/null &
pp_pid=$!
sleep 0.3
kill -9 $pp_pid
wait $pp_pid 2>/dev/null
for _ in $(seq 100); do pgrep -f "burn_threads 1 survivor" >/dev/null || break; sleep 0.05; done
expect_eq "target survives a killed poolprof" "$(cat "$T/orphan.out")" "done 1 threads x 600 ms"
ls "$T/orphan/proc/"*.arena "$T/orphan/proc/"*.rec 2>/dev/null | grep -q . && ok "process record left in RUNDIR" || bad "process record left in RUNDIR"
grep -q '^R ' "$T/orphan/monitor.rec" && ok "monitor samples flushed before the kill" || bad "monitor samples flushed before the kill"
"$POOLPROF" report "$T/orphan" >"$T/orphan.report" 2>&1 && ok "a killed run can still be reported" || bad "a killed run can still be reported: $(tail -1 "$T/orphan.report")"
finish
