#!/usr/bin/env bash
# test_chunksize.sh: a chatty process pool (20000 tasks of ~10 us, one per message) gets a chunksize, and following the advice ends it.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
W="$SRC/tests/workloads/chatty_pool.py"

# Ground truth: Pool.imap at chunksize 1 sends each task in one message and each result in one
# (multiprocessing writes a message of up to 16 KiB in one call), plus a few of its own.
pp chatty "$PY" "$W" 2 1 20000
expect_eq "chatty pool exits 0" "$rc" 0
expect_true "a send per task and per result: 40000 <= ipc.messages <= 40100 ($(q "$T/chatty.json" 'r["overall"]["ipc"]["messages"]'))" \
  "$(q "$T/chatty.json" '40000 <= r["overall"]["ipc"]["messages"] <= 40100')"
expect_true "20000 round trips or a few more" "$(q "$T/chatty.json" '20000 <= r["overall"]["work_model"]["task_round_trips"] <= 20050')"
expect_eq "verdict: processes" "$(q "$T/chatty.json" 'r["overall"]["recommendation"]["model"]')" processes
expect_true "with a chunksize of at least 8 ($(q "$T/chatty.json" 'r["overall"]["recommendation"]["chunksize"]'))" \
  "$(q "$T/chatty.json" '(r["overall"]["recommendation"]["chunksize"] or 0) >= 8')"
expect_true "that leaves at least 4 chunks per worker" \
  "$(q "$T/chatty.json" '20000 / r["overall"]["recommendation"]["chunksize"] / r["overall"]["recommendation"]["workers"] >= 4')"
expect_true "the reasons name the dispatcher and the chunksize" \
  "$(q "$T/chatty.json" 'any("dispatcher paces the pool" in x for x in r["overall"]["recommendation"]["reasons"]) and any("batch the tasks: chunksize=" in x for x in r["overall"]["recommendation"]["reasons"])')"
expect_true "terminal verdict shows it" "$(grep -q 'verdict: processes x [0-9]*, chunksize [0-9]*' "$T/chatty.err" && echo true)"

# Following the advice: the same pool at the advised chunksize sends 1/chunksize the messages
# and runs faster. The dispatcher still spends CPU per task (iterating the input, collecting
# each result: 0.11-0.15 s of 0.35 s at chunksize 40), which one run cannot tell from a cost
# per message, so further batching may still be offered, but for less than the first advice
# promised (1.0-1.24x against 1.5x in ten runs of 2026-12-02): the advice converges.
c=$(q "$T/chatty.json" 'r["overall"]["recommendation"]["chunksize"] or 1')
first=$(q "$T/chatty.json" 'r["overall"]["recommendation"]["predicted_speedup"]')
pp batched "$PY" "$W" 2 "$c" 20000
expect_eq "batched pool exits 0" "$rc" 0
expect_true "messages fall to about 2 x 20000 / $c ($(q "$T/batched.json" 'r["overall"]["ipc"]["messages"]'))" \
  "$(q "$T/batched.json" "2 * (20000 // $c) <= r['overall']['ipc']['messages'] <= 2 * (20000 // $c + 1) + 100")"
expect_true "batched run faster: $(q "$T/batched.json" 'r["wall_seconds"]') s against $(q "$T/chatty.json" 'r["wall_seconds"]') s" \
  "$(python3 -c "import json,sys; a,b=(json.load(open(f))['wall_seconds'] for f in sys.argv[1:]); print(str(b < 0.85 * a).lower())" "$T/chatty.json" "$T/batched.json")"
expect_true "no further batching advice, or one promising less than the first (${first}x)" \
  "$(q "$T/batched.json" "r['overall']['recommendation']['chunksize'] is None or r['overall']['recommendation']['predicted_speedup'] < $first")"
expect_eq "same answer printed both ways" "$(head -1 "$T/batched.out")" "$(head -1 "$T/chatty.out")"

finish
