#!/usr/bin/env python3
"""Two-stage pipeline, sweepable: N threads fetch (stage `fetch`), then a process pool, one per usable CPU, transforms (stage `transform`).

usage: hybrid_pipeline.py [N]   (N: fetch threads; default $POOLPROF_WORKERS, then 1)
The reference hybrid_pipeline with the fetch pool's size as the knob: 48 fetches from
http://127.0.0.1:$REF_PORT/ (40 ms each) and 48 transforms, the same whatever N is. Sweep
it with `--stage fetch`: only the fetch stage depends on N; the transform stage's pool is
already sized to the CPUs, so it is a constant serial part of the wall time.
Stages are marked with poolprof's stage markers, reached through ctypes so that the script
runs unchanged (and unmarked) when the shim is not preloaded.
"""
import ctypes
import math
import os
import sys
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

# 48 fetches: 1.9 s of waiting at N = 1, so each doubling of N visibly shortens the run.
FETCHES = 48
# Calibrated so the transform stage takes about 0.4 s on 2 CPUs: CPU-bound long enough to be
# measured, short enough that the fetch stage dominates the sweep.
TRANSFORM_STEPS = 150_000

_lib = ctypes.CDLL(None)
_begin = getattr(_lib, "prof_stage_begin", None)
_end = getattr(_lib, "prof_stage_end", None)


class stage:
    def __init__(self, name):
        self.name = name.encode()

    def __enter__(self):
        if _begin:
            _begin(self.name)

    def __exit__(self, *exc):
        if _end:
            _end()


def worker_count():
    # argv first (what `sweep ... {workers}` substitutes), then the exported count, then 1.
    for v in (sys.argv[1] if len(sys.argv) > 1 else None, os.environ.get("POOLPROF_WORKERS")):
        if v:
            return max(1, int(v))
    return 1


def fetch(i):
    with stage("fetch"):
        with urllib.request.urlopen(f"http://127.0.0.1:{os.environ['REF_PORT']}/p/{i}", timeout=10) as r:
            return len(r.read())


def transform(n):
    with stage("transform"):
        total = 0
        for k in range(1, TRANSFORM_STEPS):
            total += math.isqrt(n * k) & 7
        return total


if __name__ == "__main__":
    with ThreadPoolExecutor(max_workers=worker_count()) as tpool:
        sizes = list(tpool.map(fetch, range(FETCHES)))
    # One process per CPU this run may use (affinity), not os.cpu_count().
    with ProcessPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as ppool:
        print(sum(ppool.map(transform, sizes)))
