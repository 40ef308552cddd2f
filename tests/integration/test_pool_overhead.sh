#!/usr/bin/env bash
# test_pool_overhead.sh: a process pool mapping a near-free function at chunksize 1 spends more on each task than the task costs; the verdict is to call it inline (sequential), with its predicted time (issue 25, class 5); a pool whose tasks release the GIL is told threads, from the GIL holder sampled in the tasks' own code.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
W="$SRC/tests/fixtures/py/near_free_pool.py"

# 30000 tasks of well under a microsecond each through Pool(2).map at chunksize 1. Told apart from
# test_chunksize.sh's pool (tasks of ~15 us, where batching is the answer) by measurement: the
# sampler's stacks split the workers' CPU into the task's code and the pool's own loop.
pp nearfree "$PY" "$W" pool 30000 2
expect_eq "near-free pool exits 0" "$rc" 0
expect_true "a chatty pool: 30000 round trips or a few more" \
  "$(q "$T/nearfree.json" '30000 <= r["overall"]["work_model"]["task_round_trips"] <= 30050')"
split='r["overall"]["work_model"]["pool_split"]'
expect_true "the sampler split the pool's CPU ($(q "$T/nearfree.json" "$split"))" \
  "$(q "$T/nearfree.json" "$split is not None")"
expect_true "the tasks cost less than the pool spent on them in its workers alone" \
  "$(q "$T/nearfree.json" "$split['task_cpu_seconds'] < $split['worker_message_cost_seconds']")"
expect_eq "verdict: sequential" "$(q "$T/nearfree.json" 'r["overall"]["recommendation"]["model"]')" sequential
expect_eq "one worker" "$(q "$T/nearfree.json" 'r["overall"]["recommendation"]["workers"]')" 1
expect_true "no chunksize" "$(q "$T/nearfree.json" 'r["overall"]["recommendation"]["chunksize"] is None')"
expect_true "inline predicted faster than the measured pool ($(q "$T/nearfree.json" 'r["overall"]["recommendation"]["predicted_speedup"]')x)" \
  "$(q "$T/nearfree.json" 'r["overall"]["recommendation"]["predicted_speedup"] > 1.5')"
expect_true "a reason gives the inline time and the per-task figures" \
  "$(q "$T/nearfree.json" 'any("run inline, the stage is predicted" in x and "us each" in x for x in r["overall"]["recommendation"]["reasons"])')"
expect_true "terminal verdict shows it" "$(grep -q 'verdict: sequential x 1' "$T/nearfree.err" && echo true)"

# Ground truth, unprofiled: inline beats the pool by far (median of 3 each, interleaved).
truth=$(python3 - "$PY" "$W" <<'PY'
import statistics, subprocess, sys, time
py, w = sys.argv[1:]
t = {"inline": [], "pool": []}
for _ in range(3):
    for how in t:
        s = time.monotonic()
        subprocess.run([py, w, how, "30000", "2"], check=True, stdout=subprocess.DEVNULL)
        t[how].append(time.monotonic() - s)
print(f"{statistics.median(t['inline']):.3f} {statistics.median(t['pool']):.3f}")
PY
)
read -r inline pool <<<"$truth"
expect_true "inline ($inline s) faster than the pool ($pool s)" \
  "$(python3 -c "import sys; print(str(float(sys.argv[1]) < float(sys.argv[2])).lower())" "$inline" "$pool")"

# A pool whose tasks release the GIL (hashlib over 64 KiB payloads): the GIL holder, sampled in
# the code the pool called, held it in few of those ticks; threads share the hashing without
# pickling the payloads. (A pool of bytecode tasks would read near 1 and stay off threads.)
G="$SRC/tests/fixtures/py/gil_free_pool.py"
pp gilfree "$PY" "$G" processes 400
expect_eq "GIL-free pool exits 0" "$rc" 0
expect_true "threads' serial share well under 1: the tasks' GIL share sampled in their own code ($(q "$T/gilfree.json" 'r["overall"]["work_model"]["serial_fraction"]'))" \
  "$(q "$T/gilfree.json" 'r["overall"]["work_model"]["serial_fraction"]["threads"] < 0.5')"
expect_eq "verdict: threads" "$(q "$T/gilfree.json" 'r["overall"]["recommendation"]["model"]')" threads
truth=$(python3 - "$PY" "$G" <<'PY'
import statistics, subprocess, sys, time
py, w = sys.argv[1:]
t = {"inline": [], "threads": [], "processes": []}
for _ in range(3):
    for how in t:
        s = time.monotonic()
        subprocess.run([py, w, how, "400"], check=True, stdout=subprocess.DEVNULL)
        t[how].append(time.monotonic() - s)
print(" ".join(f"{statistics.median(t[h]):.3f}" for h in t))
PY
)
read -r inline threads procs <<<"$truth"
expect_true "threads ($threads s) faster than inline ($inline s) and the process pool ($procs s)" \
  "$(python3 -c "import sys; a, b, c = map(float, sys.argv[1:]); print(str(b < a and b < c).lower())" "$inline" "$threads" "$procs")"

finish
