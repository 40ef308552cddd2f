#!/usr/bin/env bash
# test_idle_waits.sh: issue 25's programs, each whole through the CLI: a stage with no work predicts no speedup
# (one sleep, `true`, a writer blocked on a full pipe, a service's idle threads seen by attach), and separate
# waits overlap at most as many-fold as there were of them.
. "$(dirname "$0")/lib.sh"

# every stage of REPORT: "idle" ones exactly 1.0x, the rest at most 1.0 + SLACK
no_speedup() {
  q "$1" "max([s['recommendation']['predicted_speedup'] - (1.0 if s['class'] == 'idle' else 1.0 + $2)
               for s in [r['overall']] + r['stages']]) <= 1e-9"
}
stages() { q "$1" "'; '.join(f\"{s['name']}: {s['class']} {s['recommendation']['model']} x {s['recommendation']['workers']} {s['recommendation']['predicted_speedup']}x\" for s in [r['overall']] + r['stages'])"; }

# ---- python3 -c 'import time; time.sleep(1)': one wait, 20 ms of interpreter CPU ------------------
pp pysleep /usr/bin/python3 -c 'import time; time.sleep(1)'
R=$T/pysleep.json
echo "# $(stages $R)"
expect_eq "python sleep: one sleep counted" "$(q $R 'r["overall"]["sleeps"]')" 1
expect_near "python sleep: its seconds" "$(q $R 'r["overall"]["sleep_seconds"]')" 1.0 0.05 0.03
expect_eq "python sleep: sequential" "$(q $R 'r["overall"]["recommendation"]["model"]')" sequential
expect_eq "python sleep: no stage predicts a speedup" "$(no_speedup $R 0)" true

# ---- true: its CPU is exec and the loader, before main ---------------------------------------------
pp true /bin/true
R=$T/true.json
echo "# $(stages $R)"
expect_eq "true: idle" "$(q $R 'r["overall"]["class"]')" idle
expect_eq "true: no stage predicts a speedup" "$(no_speedup $R 0)" true

# ---- find writing into a pipe whose reader never reads, inside the tree ----------------------------
# The walk is run once beforehand: what this checks is the pipe whose reader never reads. With /usr's
# directories not in the page cache, find's uninterposed directory reads before the pipe fills make its
# 2% of CPU read as computation beside the IPC set aside, a wrong speedup of 1.2-1.45x (2 of 5 runs
# after drop_caches, at this and at the previous main): an open bug of the advice, named in issue 27's
# closing note, not this test's subject.
find /usr >/dev/null 2>&1
pp find sh -c 'find /usr | sleep 1'
R=$T/find.json
echo "# $(stages $R)"
expect_eq "find | sleep: exit" "$rc" 0
expect_eq "find | sleep: the sleep counted once" "$(q $R 'r["overall"]["sleeps"]')" 1
expect_eq "find | sleep: no stage predicts a speedup" "$(no_speedup $R 0.01)" true

# ---- a writer whose reader outside the tree is slow: back-pressure ---------------------------------
"$POOLPROF" run -o "$T/out" --json "$T/out.json" -- "$FIXTURES/pipe_backpressure" out 2>"$T/out.err" | (sleep 1; cat >/dev/null)
R=$T/out.json
echo "# $(stages $R)"
expect_near "blocked writer: back-pressure seconds" "$(q $R 'stage(r, "writer")["io"]["send_wait_seconds"]')" 1.0 0.1 0.05
expect_eq "blocked writer: sequential" "$(q $R 'stage(r, "writer")["recommendation"]["model"]')" sequential
expect_eq "blocked writer: no stage predicts a speedup" "$(no_speedup $R 0)" true

# ---- 50 separate sleeps of 20 ms: at most 50 workers, at most 50x ---------------------------------
pp fifty "$FIXTURES/sleeps" 50 20
R=$T/fifty.json
echo "# $(stages $R)"
expect_eq "50 sleeps: counted" "$(q $R 'r["overall"]["sleeps"]')" 50
expect_eq "50 sleeps: threads" "$(q $R 'r["overall"]["recommendation"]["model"]')" threads
expect_true "50 sleeps: at most 50 workers" "$(q $R 'str(r["overall"]["recommendation"]["workers"] <= 50).lower()')"
expect_true "50 sleeps: 1x < speedup <= 50x" \
  "$(q $R 'str(1.0 < r["overall"]["recommendation"]["predicted_speedup"] <= 50.0).lower()')"

# ---- attached to a service whose named threads are all idle (each did 50 ms of CPU before) ---------
"$FIXTURES/idle_service" >"$T/svc.out" &
svc=$!
for _ in $(seq 50); do [[ -s $T/svc.out ]] && break; sleep 0.1; done
"$POOLPROF" attach --duration 1.5 -o "$T/svc" --json "$T/svc.json" "$svc" >/dev/null 2>"$T/svc.err"
expect_eq "attach idle service: poolprof exits 0" "$?" 0
kill "$svc"; wait "$svc" 2>/dev/null
R=$T/svc.json
echo "# $(stages $R)"
for name in reader poller waiter sleeper; do
  expect_eq "attach idle service: $name is idle" "$(q $R "stage(r, '$name')['class']")" idle
  expect_near "attach idle service: $name's CPU is the window's, not its life's" \
    "$(q $R "stage(r, '$name')['cpu_seconds']")" 0 0 0.005
done
expect_eq "attach idle service: no stage predicts a speedup" "$(no_speedup $R 0)" true

finish
