#!/usr/bin/env python3
"""A chatty process pool: many small tasks through multiprocessing.Pool.imap, one task per message by default.

usage: chatty_pool.py [N] [CHUNKSIZE] [TASKS]   (N: processes, default $POOLPROF_WORKERS, then 2;
CHUNKSIZE: tasks per message, default 1, imap's own default; TASKS: default 20000)
Each task is ~10 us of CPU, less than the pool's dispatcher spends sending it and reading
its result back, so at chunksize 1 the dispatcher paces the pool and more processes do not
help; batching the tasks does. The answer is the same for every N and CHUNKSIZE.
"""
import os
import sys
from multiprocessing import Pool


def arg(i, env, default):
    v = sys.argv[i] if len(sys.argv) > i else None
    if not v and env:
        v = os.environ.get(env)
    return max(1, int(v)) if v else default


def work(n):
    s = 0
    for i in range(400):
        s += (n * i) % 7
    return s


if __name__ == "__main__":
    workers = arg(1, "POOLPROF_WORKERS", 2)
    chunk = arg(2, None, 1)
    tasks = arg(3, None, 20000)
    with Pool(workers) as pool:
        print(sum(pool.imap(work, range(tasks), chunksize=chunk)))
