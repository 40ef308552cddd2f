#!/usr/bin/env python3
"""ab_builds.py: two builds of poolprof on the same workloads, interleaved: the target's wall time, poolprof run's whole time (rendering included), the sampler's CPU and what the run directory holds.

usage: bench/ab_builds.py --before OLD/build/poolprof [--after build/poolprof] [--rounds 7]
                          [--workload NAME ...]

Workloads are reference workloads (../shared/reference/workloads/NAME.py, run with python3);
by default cpu_threads_gil (four threads on the GIL: the sampler's busiest case) and
ipc_heavy_pool (a process pool: many processes and pipes). Round r runs every workload under
both builds, before first in even rounds and after first in odd ones. Medians of the rounds;
ratios after/before. Build the old commit in a worktree first:
    git worktree add /tmp/old REV && cmake -S /tmp/old -B /tmp/old/build && cmake --build /tmp/old/build
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "reference", "workloads"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workload", action="append")
    a = ap.parse_args()
    builds = {"before": os.path.abspath(a.before), "after": os.path.abspath(a.after)}
    loads = a.workload or ["cpu_threads_gil", "ipc_heavy_pool"]
    res = {}
    with tempfile.TemporaryDirectory(prefix="ab-builds.") as tmp:
        for r in range(a.rounds):
            for w in loads:
                for b in (["before", "after"] if r % 2 == 0 else ["after", "before"]):
                    d = os.path.join(tmp, b)
                    shutil.rmtree(d, ignore_errors=True)
                    t0 = time.perf_counter()
                    subprocess.run([builds[b], "run", "-o", d, "--", "python3", os.path.join(REF, w + ".py")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                    total = time.perf_counter() - t0
                    rep = json.load(open(os.path.join(d, "report.json")))
                    files = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                                if os.path.isfile(os.path.join(d, f)))
                    res.setdefault((w, b), []).append((rep["wall_seconds"], total,
                                                       rep["measurement"]["sampler"]["self_cpu_seconds"],
                                                       os.path.getsize(os.path.join(d, "sampler.rec")), files))
    print(f"| workload | target wall after/before | poolprof run's whole time after/before | sampler CPU (ms) | "
          f"sampler.rec (KiB) | run directory's files (KiB) |")
    print("|---|---|---|---|---|---|")
    for w in loads:
        b, f = res[(w, "before")], res[(w, "after")]
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        print(f"| {w} | {med(f, 0) / med(b, 0):.3f} ({med(b, 0):.3f} -> {med(f, 0):.3f} s) | "
              f"{med(f, 1) / med(b, 1):.3f} | {med(b, 2) * 1000:.0f} -> {med(f, 2) * 1000:.0f} | "
              f"{med(b, 3) / 1024:.0f} -> {med(f, 3) / 1024:.0f} | {med(b, 4) / 1024:.0f} -> {med(f, 4) / 1024:.0f} |")


if __name__ == "__main__":
    main()
