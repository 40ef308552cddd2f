#!/usr/bin/env python3
"""shim_costs.py: nanoseconds the shim adds per uncontended mutex lock/unlock pair, per stage begin/end pair, per 64-byte file write and per semaphore trywait/post pair.

usage: bench/shim_costs.py [--build build] [--runs 7]

Runs build/bench/shim_micro without the shim, with it, and with it reading the vDSO clock
instead of the TSC (POOLPROF_TSC=0, as before it read the TSC), in turn, and
prints the median per-operation time of each and the difference (targets: mutex
<= 15 ns, marker pair <= 100 ns, write <= 50 ns, semaphore pair <= 15 ns: CPython's
uncontended threading.Lock acquire and release). Without the shim the marker
loop calls an empty function, so the figure is what a marker adds over a call.
"""
import argparse, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(exe, env, path):
    out = subprocess.run([exe, path], env=env, check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    exe, shim = os.path.join(build, "bench", "shim_micro"), os.path.join(build, "libprof.so")
    work = tempfile.mkdtemp(prefix="poolprof-micro.")
    os.makedirs(os.path.join(work, "proc"))
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "POOLPROF_"))}
    shim_env = dict(plain_env, LD_PRELOAD=shim, POOLPROF_DIR=work, POOLPROF_SHIM=shim)
    # The shim as it was before it read the TSC: the vDSO clock (POOLPROF_TSC=0), for comparison.
    vdso_env = dict(shim_env, POOLPROF_TSC="0")
    plain, prof, vdso = [], [], []
    for i in range(a.runs):
        plain.append(run(exe, plain_env, os.path.join(work, "f")))
        prof.append(run(exe, shim_env, os.path.join(work, "f")))
        vdso.append(run(exe, vdso_env, os.path.join(work, "f")))
    names = [("mutex lock/unlock pair", 15), ("stage begin/end pair", 100), ("64-byte file write", 50),
             ("sem trywait/post pair", 15)]
    print(f"{'operation':<24} {'plain ns':>9} {'shim ns':>9} {'added ns':>9} {'ratio':>6} {'target':>8} "
          f"{'vDSO clock: shim ns':>20} {'added ns':>9}   (median of {a.runs}, interleaved)")
    for k, (name, target) in enumerate(names):
        p = statistics.median(r[k] for r in plain)
        q = statistics.median(r[k] for r in prof)
        v = statistics.median(r[k] for r in vdso)
        print(f"{name:<24} {p:9.1f} {q:9.1f} {q - p:9.1f} {q / p:6.2f} {'<= ' + str(target):>8} {v:20.1f} {v - p:9.1f}")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
