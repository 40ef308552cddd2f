#!/usr/bin/env python3
"""ab.py: interleaved A/B of poolprof settings on one workload: the workload's own wall time, as a ratio to unprofiled runs.

usage: bench/ab.py WORKLOAD ROUNDS [CONFIG ...]

WORKLOAD: a reference workload name (../shared/reference/workloads/NAME.py, run with
/usr/bin/python3) or a path to a program. CONFIG: poolprof run arguments separated by commas,
then optional :ENV=value pairs, e.g. "--no-preload,--stacks,python,--rate,100:POOLPROF_SWITCHES=0";
the special CONFIG "standin:HZ:US" runs bench/cpu_standin beside the unprofiled workload
instead (a process with the tracer's CPU and no contact with the target), and "perffloor:HZ[:BYTES]"
runs it under bench/perf_floor (CPU-wide sampling events as for native stacks, BYTES of stack
a sample, 16384 by default, the rings emptied unread: the kernel's share of the cost). Every round runs
plain and each CONFIG once, in a shuffled order; bench/walltime times the workload alone.
Prints the median ratio of each CONFIG to plain and a 90% bootstrap interval (2000 draws).
"""
import os, random, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
BUILD = os.path.join(ROOT, "build")
W, PP, STANDIN = os.path.join(BUILD, "bench", "walltime"), os.path.join(BUILD, "poolprof"), os.path.join(BUILD, "bench", "cpu_standin")
FLOOR = os.path.join(BUILD, "bench", "perf_floor")
REF = os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "workloads"))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2])
    wl, rounds, cfgs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    cmd = [wl] if os.path.sep in wl else ["/usr/bin/python3", os.path.join(REF, wl + ".py")]
    if not os.path.exists(cmd[-1]):
        sys.exit(f"ab.py: no {cmd[-1]} (give a compiled workload as a path)")
    tmp = tempfile.mkdtemp(prefix="poolprof-ab.")
    res = {c: [] for c in ["plain"] + cfgs}
    try:
        for _ in range(rounds):
            order = list(res)
            random.shuffle(order)
            for c in order:
                tw, env, side = os.path.join(tmp, "wall"), dict(os.environ), None
                if c == "plain":
                    argv = [W, tw, *cmd]
                elif c.startswith("perffloor:"):
                    parts = c.split(":")
                    argv = [FLOOR, parts[1], parts[2] if len(parts) > 2 else "16384", W, tw, *cmd]
                elif c.startswith("standin:"):
                    _, hz, us = c.split(":")
                    side = subprocess.Popen([STANDIN, hz, us])
                    argv = [W, tw, *cmd]
                else:
                    parts = c.split(":")
                    for e in parts[1:]:
                        k, v = e.split("=", 1)
                        env[k] = v
                    run = os.path.join(tmp, "run")
                    shutil.rmtree(run, ignore_errors=True)
                    argv = [PP, "run", *parts[0].split(","), "-o", run, "--", W, tw, *cmd]
                subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
                if side:
                    side.kill()
                    side.wait()
                res[c].append(int(open(tw).read()) / 1e9)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(res["plain"])
    for c in res:
        draws = sorted(statistics.median([random.choice(res[c]) for _ in res[c]]) /
                       statistics.median([random.choice(res["plain"]) for _ in res["plain"]]) for _ in range(2000))
        print(f"{c:60s} {statistics.median(res[c]) / base:.3f} [{draws[100]:.3f}-{draws[1900]:.3f}] "
              f"(median {statistics.median(res[c]):.3f} s)")


if __name__ == "__main__":
    main()
