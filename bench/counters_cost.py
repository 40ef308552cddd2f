#!/usr/bin/env python3
"""counters_cost.py: what the default perf counters cost a profiled run: `poolprof run` against `poolprof run --no-counters` on the reference workloads, as ratios.

usage: bench/counters_cost.py [--poolprof build/poolprof] [--runs 7] [--aa] [--cmd 'CMD ARGS'] [WORKLOAD ...]

For each workload it runs `poolprof run --no-counters` and `poolprof run` (the default set:
context switches, migrations, minor and major faults, one counter per thread opened from
poolprof's process) alternately, so both see the same machine noise, and prints the median wall
time of each and their ratio; then the geometric mean of the ratios. Two walls per run: the
workload's own (the root's life, run.json start to end: what the counters cost the target) and
the whole `poolprof run` (start, merge and report included: what a user waits for). The machine
is shared: compare ratios, not times.

--cmd times one command of your own instead (repeatable): e.g. the worst case, a ping-pong that
switches context hundreds of thousands of times a second (build/tests/fixtures/ctr_pingpong).

--aa runs --no-counters in both arms: the ratios it prints are the machine's own noise floor
for this measurement, what a difference must exceed to be the counters'.
"""
import argparse, json, math, os, shutil, statistics, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "reference"))


def target_wall(rundir):
    run = json.load(open(os.path.join(rundir, "run.json")))
    return (run["end_ns"] - run["start_ns"]) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--aa", action="store_true", help="both arms without counters: the noise floor")
    ap.add_argument("--cmd", action="append", default=[], help="a command line to time instead of the workloads")
    ap.add_argument("workloads", nargs="*")
    a = ap.parse_args()
    poolprof = os.path.abspath(a.poolprof)
    spec = json.load(open(os.path.join(REF, "expected.json")))["workloads"]
    names = [("cmd", c) for c in a.cmd] or [spec[n]["run"] for n in (a.workloads or list(spec))]
    labels = [os.path.basename(c.split()[0]) for c in a.cmd] or (a.workloads or list(spec))
    work = tempfile.mkdtemp(prefix="poolprof-ctrbench.")
    portfile = os.path.join(work, "port")
    server = subprocess.Popen([a.python, os.path.join(REF, "slow_http.py"), portfile, "40"])
    try:
        for _ in range(200):
            if os.path.exists(portfile):
                break
            time.sleep(0.05)
        env = dict(os.environ, REF_PORT=open(portfile).read().strip())
        print(f"{'workload':<18} {'target: off s':>13} {'on s':>7} {'ratio':>6}   {'whole: off s':>12} {'on s':>7} {'ratio':>6}"
              f"   (median of {a.runs}, interleaved)")
        tr, wr = [], []
        for name, (kind, file) in zip(labels, names):
            if kind == "cmd":
                cmd = file.split()
            elif kind == "c":
                exe = os.path.join(work, file)
                subprocess.run(["cc", "-O2", "-g", "-pthread", "-o", exe, os.path.join(REF, "workloads", file + ".c")],
                               check=True)
                cmd = [exe]
            else:
                cmd = [a.python, os.path.join(REF, "workloads", file)]
            t_off, t_on, w_off, w_on = [], [], [], []
            for i in range(a.runs):
                # Alternate which goes first, so neither always follows the other's page cache.
                order = [("off", ["--no-counters"]), ("on", ["--no-counters"] if a.aa else [])]
                if i % 2:
                    order.reverse()
                for which, extra in order:
                    rundir = os.path.join(work, f"run-{name}-{which}-{i}")
                    t = time.perf_counter()
                    subprocess.run([poolprof, "run", "-o", rundir, *extra, "--", *cmd], env=env, cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                    whole = time.perf_counter() - t
                    (w_on if which == "on" else w_off).append(whole)
                    (t_on if which == "on" else t_off).append(target_wall(rundir))
                    shutil.rmtree(rundir, ignore_errors=True)
            to, tn, wo, wn = map(statistics.median, (t_off, t_on, w_off, w_on))
            tr.append(tn / to)
            wr.append(wn / wo)
            print(f"{name:<18} {to:13.3f} {tn:7.3f} {tn / to:6.3f}   {wo:12.3f} {wn:7.3f} {wn / wo:6.3f}", flush=True)
        gm = lambda v: math.exp(sum(map(math.log, v)) / len(v))
        print(f"{'geometric mean':<18} {'':13} {'':7} {gm(tr):6.3f}   {'':12} {'':7} {gm(wr):6.3f}")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
