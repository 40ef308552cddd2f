#!/usr/bin/env python3
"""pool_maxtasks.py: a process pool that replaces its worker after every task, bench/fanout.py's pool workload.

usage: bench/pool_maxtasks.py [TASKS] [WORK]   (defaults 200 and 20000)

multiprocessing.Pool(2, maxtasksperchild=1) maps a small CPU function (WORK steps of an
integer recurrence on the task's number) over TASKS tasks with chunksize 1, so every task
runs in a freshly forked worker: about TASKS short process images. The start method is
pinned to "fork" so the count and the cost do not change with the Python version's default.
Prints "tasks=N checksum=X", X depending only on TASKS and WORK.
"""
import multiprocessing
import sys


def task(i, work):
    x = i
    for _ in range(work):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def main():
    if len(sys.argv) > 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2, maxtasksperchild=1) as pool:
        out = pool.starmap(task, [(i, work) for i in range(tasks)], chunksize=1)
    print(f"tasks={tasks} checksum={sum(out) & 0xFFFFFFFFFFFF:012x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
