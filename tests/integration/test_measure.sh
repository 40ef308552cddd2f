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
cc -O2 -o "$T/grow.bin" "$SRC/../shared/reference/workloads/c_rss_growth.c"
pp grow "$T/grow.bin"
expect_near "rss growth of 320 MiB" "$(q $T/grow.json 'r["overall"]["rss"]["growth_bytes"]')" 335544320 0.1 20000000
expect_eq "growing memory is a suspected leak" "$(q $T/grow.json 'r["overall"]["rss"]["leak_suspected"]')" true
[[ -s $T/grow/rss.csv ]] && ok "rss.csv time series kept" || bad "rss.csv time series kept"

# memory that grows then levels off is no leak: 200 MiB at once, then 600 ms idle
cat >"$T/plateau.py" <<'PY'
import time
x = bytearray(200 << 20)
for i in range(0, len(x), 4096): x[i] = 1
time.sleep(0.6)
PY
pp plateau /usr/bin/python3 "$T/plateau.py"
expect_eq "plateau is no leak" "$(q $T/plateau.json 'r["overall"]["rss"]["leak_suspected"]')" false
finish
