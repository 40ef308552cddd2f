#!/usr/bin/env bash
# test_attach_gil.sh: poolprof attach on a GIL-bound Python program started outside poolprof: GIL found, is_prime in the folded stacks, the target ends as it would have.
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
plain=$("$py" -c 'print(1)') # warm the page cache for the interpreter
# Four threads testing 6000 numbers (1600 x 3.75): several seconds of GIL-bound work.
"$py" "$SRC/tests/workloads/cpu_threads_gil.py" 4 3.75 >"$T/target.out" 2>&1 &
target=$!
sleep 0.5
"$POOLPROF" attach --duration 2 -o "$T/run" --json "$T/run.json" "$target" >"$T/attach.out" 2>"$T/attach.err"
expect_eq "attach exit" "$?" 0
expect_eq "target no longer traced after detach" "$(awk '/^TracerPid/{print $2}' /proc/$target/status 2>/dev/null || echo 0)" 0
wait "$target"
expect_eq "target's own exit status" "$?" 0
expect_eq "target's output" "$(cat "$T/target.out")" "$("$py" -c '
import math
def is_prime(n):
    if n % 2 == 0: return n == 2
    for d in range(3, int(math.sqrt(n)) + 1, 2):
        if n % d == 0: return False
    return True
print(sum(is_prime(1_000_000_000_039 + 2 * k) for k in range(6000)))')"
expect_eq "overall.lock.gil" "$(q "$T/run.json" 'r["overall"]["lock"]["gil"]')" true
expect_eq "GIL waits measured by the sampler" "$(q "$T/run.json" 'r["overall"]["lock"]["wait_fraction"] > 0.3')" true
expect_eq "figures came from the sampler" "$(q "$T/run.json" 'r["overall"]["sources"]["waits"]')" sampler
expect_eq "folded stacks name is_prime" "$(grep -c 'is_prime' "$T/run/stacks.folded" | awk '{print ($1 > 0)}')" 1
expect_eq "GIL-held share of CPU is high" "$(q "$T/run.json" 'r["overall"]["gil_held_share"] > 0.5')" true
finish
