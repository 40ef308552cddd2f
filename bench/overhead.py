#!/usr/bin/env python3
"""overhead.py: wall-time overhead of `poolprof run` on the reference workloads, as ratios against unprofiled runs.

usage: bench/overhead.py [--poolprof build/poolprof] [--runs 5] [WORKLOAD ...]

For each workload it runs the plain command and the profiled command alternately
(plain, profiled, plain, profiled, ...) so that both see the same machine noise,
takes the median wall time of each, and prints median(profiled) / median(plain).
Wall time is measured around the whole `poolprof run` (start, merge and report
included) — what a user waits for. The machine is shared: compare ratios, not times.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "reference"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("workloads", nargs="*")
    a = ap.parse_args()
    poolprof = os.path.abspath(a.poolprof)
    spec = json.load(open(os.path.join(REF, "expected.json")))["workloads"]
    names = a.workloads or list(spec)
    work = tempfile.mkdtemp(prefix="poolprof-bench.")
    portfile = os.path.join(work, "port")
    server = subprocess.Popen([a.python, os.path.join(REF, "slow_http.py"), portfile, "40"])
    try:
        for _ in range(200):
            if os.path.exists(portfile):
                break
            time.sleep(0.05)
        env = dict(os.environ, REF_PORT=open(portfile).read().strip())
        print(f"{'workload':<18} {'plain s':>9} {'profiled s':>11} {'ratio':>7}   (median of {a.runs}, interleaved)")
        ratios = []
        for name in names:
            kind, file = spec[name]["run"]
            if kind == "c":
                exe = os.path.join(work, file)
                subprocess.run(["cc", "-O2", "-g", "-pthread", "-o", exe, os.path.join(REF, "workloads", file + ".c")], check=True)
                cmd = [exe]
            else:
                cmd = [a.python, os.path.join(REF, "workloads", file)]
            plain, prof = [], []
            for i in range(a.runs):
                t = time.perf_counter()
                subprocess.run(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, check=True)
                plain.append(time.perf_counter() - t)
                rundir = os.path.join(work, f"run-{name}-{i}")
                t = time.perf_counter()
                subprocess.run([poolprof, "run", "-o", rundir, "--", *cmd], env=env, cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                prof.append(time.perf_counter() - t)
                shutil.rmtree(rundir, ignore_errors=True)
            p, q = statistics.median(plain), statistics.median(prof)
            ratios.append(q / p)
            print(f"{name:<18} {p:9.3f} {q:11.3f} {q / p:7.3f}", flush=True)
        print(f"{'median ratio':<18} {'':>9} {'':>11} {statistics.median(ratios):7.3f}")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
