#!/usr/bin/env python3
"""CPU-bound, sweepable: the reference cpu_primes_seq's trial divisions split into 32 chunks over a ProcessPoolExecutor of N processes.

usage: cpu_primes_procs.py [N] [SCALE]   (N: processes; default $POOLPROF_WORKERS, then 1.
SCALE: fraction of the numbers to test, default 1; tests use a small one for short runs)
The numbers tested are the same whatever N is, so work / wall is throughput. 32 chunks
(at least 4 per process up to N = 8) keep the last chunk from leaving processes idle.
"""
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor

# Calibrated so that N = 1 takes about 2 s on the 2-CPU development machine.
NUMBERS = 1600
CHUNKS = 32


def worker_count():
    # argv first (what `sweep ... {workers}` substitutes), then the exported count, then 1.
    for v in (sys.argv[1] if len(sys.argv) > 1 else None, os.environ.get("POOLPROF_WORKERS")):
        if v:
            return max(1, int(v))
    return 1


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    for d in range(3, int(math.sqrt(n)) + 1, 2):
        if n % d == 0:
            return False
    return True


def count_primes(chunk):
    return sum(is_prime(n) for n in chunk)


if __name__ == "__main__":
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    nums = [1_000_000_000_039 + 2 * k for k in range(max(1, int(NUMBERS * scale)))]
    # Strided chunks, not contiguous runs: primes cluster unevenly, striding evens out the cost.
    chunks = [nums[i::CHUNKS] for i in range(CHUNKS)]
    with ProcessPoolExecutor(max_workers=worker_count()) as pool:
        print(sum(pool.map(count_primes, chunks)))
