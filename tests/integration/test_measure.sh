#!/usr/bin/env bash
# test_measure.sh: figures against ground truth: known CPU per thread, known sleep, known memory growth, thread-name stages.
. "$(dirname "$0")/lib.sh"

# two threads named "burner" burn 400 ms CPU each; then the main thread sleeps 500 ms
pp burn "$FIXTURES/burn_threads" 2 burner 400 500
expect_eq "exit" "$rc" 0
R=$T/burn.json
expect_eq "burner stage has 2 threads" "$(q $R 'stage(r, "burner")["threads"]')" 2
expect_near "burner cpu_seconds" "$(q $R 'stage(r, "burner")["cpu_seconds"]')" 0.8 0.15 0.05
expect_eq "burner is cpu-bound" "$(q $R 'stage(r, "burner")["class"]')" cpu-bound
expect_eq "native burner threads: threads" "$(q $R 'stage(r, "burner")["recommendation"]["model"]')" threads
expect_near "run wall covers the sleep" "$(q $R 'r["wall_seconds"]')" 0.9 0.5 0.3
expect_near "main thread CPU stays small" "$(q $R "[t['cpu_seconds'] for t in r['processes'][0]['threads'] if t['tid'] == r['processes'][0]['pid']][0]")" 0 0 0.05
expect_eq "usable_cpus is a positive count" "$(q $R 'r["machine"]["usable_cpus"] >= 1')" true

# memory that grows by a known amount: 40 x 8 MiB, never freed
pp grow "$FIXTURES/rss_growth"
expect_near "rss growth of 320 MiB" "$(q $T/grow.json 'r["overall"]["rss"]["growth_bytes"]')" 335544320 0.1 20000000
expect_eq "growing memory is a suspected leak" "$(q $T/grow.json 'r["overall"]["rss"]["leak_suspected"]')" true
[[ -s $T/grow/rss.csv ]] && ok "rss.csv time series kept" || bad "rss.csv time series kept"

# a CPython loop memoising every result (~270 MiB over ~0.45 s) whose interpreter frees it all at
# exit: a leak in each of three runs (the fall at shutdown is the exit, not churn)
cat >"$T/memo.py" <<'PY'
memo = {}
for i in range(1200000):
    memo[i] = ("event-%d" % i) * 8
print(len(memo))
PY
for k in 1 2 3; do
  pp memo$k /usr/bin/python3 "$T/memo.py"
  expect_eq "a leak freed at exit, run $k" "$(q $T/memo$k.json 'r["overall"]["rss"]["leak_suspected"]')" true
done

# memory that grows then levels off is no leak: 200 MiB at once, then 600 ms idle
cat >"$T/plateau.py" <<'PY'
import time
x = bytearray(200 << 20)
for i in range(0, len(x), 4096): x[i] = 1
time.sleep(0.6)
PY
pp plateau /usr/bin/python3 "$T/plateau.py"
expect_eq "plateau is no leak" "$(q $T/plateau.json 'r["overall"]["rss"]["leak_suspected"]')" false
# 30 threads parked on an Event while the main thread spins 0.6 s: one thread's CPU over the run,
# however the parked threads' lives are bounded (their waits must not eat the busy thread's time)
cat >"$T/parked.py" <<'PY'
import threading, time
ev = threading.Event()
ts = [threading.Thread(target=ev.wait) for _ in range(30)]
for t in ts: t.start()
end = time.process_time() + 0.6
while time.process_time() < end: pass
ev.set()
for t in ts: t.join()
PY
for how in "" "--no-preload --stacks none"; do
  name=parked${how:+_states}
  "$POOLPROF" run $how -o "$T/$name" --json "$T/$name.json" -- /usr/bin/python3 "$T/parked.py" >"$T/$name.out" 2>"$T/$name.err"
  expect_eq "parked threads ($name): exit" "$?" 0
  R=$T/$name.json
  expect_near "parked threads ($name): CPU seconds (one thread spins 0.6 s)" "$(q $R 'r["overall"]["cpu_seconds"]')" 0.6 0.15 0.05
  expect_near "parked threads ($name): CPU demand of the work (one busy thread)" \
    "$(q $R 'r["overall"]["demand_ratio"]')" 1.0 0.2 0.05
  expect_true "parked threads ($name): CPU/wall no more than one thread's ($(q $R 'r["overall"]["cpu_wall_ratio"]'))" \
    "$(q $R 'str(r["overall"]["cpu_wall_ratio"] <= 1.1).lower()')"
  expect_eq "parked threads ($name): CPython recognised" "$(q $R 'r["processes"][0]["python"]')" true
  expect_true "parked threads ($name): poolprof's own CPU reported" \
    "$(q $R 'str(r["measurement"]["monitor_cpu_seconds"] > 0).lower()')"
done

finish
