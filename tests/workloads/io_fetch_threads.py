#!/usr/bin/env python3
"""I/O-bound, sweepable: the reference io_fetch_seq's 40 slow GETs spread over a ThreadPoolExecutor of N threads.

usage: io_fetch_threads.py [N]   (N: worker threads; default $POOLPROF_WORKERS, then 1)
Fetches http://127.0.0.1:$REF_PORT/item/I for I in 0..39; the server (slow_http.py) waits
40 ms per request. The 40 requests are the same whatever N is, so 40 / wall is throughput
and `poolprof sweep --workers 1,2,4,8 -- python3 io_fetch_threads.py {workers}` compares counts.
"""
import os
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

FETCHES = 40


def worker_count():
    # argv first (what `sweep ... {workers}` substitutes), then the exported count, then 1.
    for v in (sys.argv[1] if len(sys.argv) > 1 else None, os.environ.get("POOLPROF_WORKERS")):
        if v:
            return max(1, int(v))
    return 1


def fetch(i):
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ['REF_PORT']}/item/{i}", timeout=10) as r:
        return len(r.read())


if __name__ == "__main__":
    with ThreadPoolExecutor(max_workers=worker_count()) as pool:
        print(sum(pool.map(fetch, range(FETCHES))))
