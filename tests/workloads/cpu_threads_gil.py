#!/usr/bin/env python3
"""CPU-bound on threads, sweepable: the reference cpu_threads_gil's prime tests on a ThreadPoolExecutor of N threads, which serialize on the GIL.

usage: cpu_threads_gil.py [N] [SCALE]   (N: threads; default $POOLPROF_WORKERS, then 1.
SCALE: fraction of the numbers to test, default 1)
Same numbers as cpu_primes_procs.py whatever N is, so work / wall is throughput; more
threads should buy nothing, which is what a sweep of this program shows.
"""
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor

# Same work as cpu_primes_procs.py, so the two sweeps compare models on equal terms.
NUMBERS = 1600


def worker_count():
    # argv first (what `sweep ... {workers}` substitutes), then the exported count, then 1.
    for v in (sys.argv[1] if len(sys.argv) > 1 else None, os.environ.get("POOLPROF_WORKERS")):
        if v:
            return max(1, int(v))
    return 1


def is_prime(n):
    if n % 2 == 0:
        return n == 2
    for d in range(3, int(math.sqrt(n)) + 1, 2):
        if n % d == 0:
            return False
    return True


if __name__ == "__main__":
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    nums = [1_000_000_000_039 + 2 * k for k in range(max(1, int(NUMBERS * scale)))]
    # One task per number, as the reference maps them: the threads hand the GIL back and forth.
    with ThreadPoolExecutor(max_workers=worker_count()) as pool:
        print(sum(pool.map(is_prime, nums)))
