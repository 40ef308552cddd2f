#!/usr/bin/env python3
"""sweep_table.py: does poolprof's recommended worker count hold up when measured? A `poolprof sweep` per sweepable workload, as a markdown table.

usage: bench/sweep_table.py [--poolprof build/poolprof] [--repeat 3] [--variants a,b] [--python /usr/bin/python3]

For each variant (tests/workloads/*.py and tests/fixtures/sweep_*.c, each doing a fixed total
of work split over the worker count it is given) it starts tests/workloads/slow_http.py on a
free port (exported as REF_PORT), runs

    poolprof sweep --workers 1,2,4,8 --repeat R --json OUT [--stage S] -- CMD {workers}

and prints one row: the model the program itself uses, what poolprof recommends, the count
that measured fastest, the throughput at the recommended count relative to the best (PASS
when >= 0.90), the speedup poolprof's scaling model predicted at the recommended count beside
the measured one, and the Amdahl and USL fits of the measured curve.
A benchmark, not a test: wall times depend on the machine and its load; read the ratios.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
WORKLOADS = os.path.join(ROOT, "tests", "workloads")

# name -> (kind, file, the model the program itself runs, the stage the sweep judges or None for
# overall, the worker count poolprof run profiles at). The C programs are profiled at 2 threads, as
# the reference runs them: one thread cannot show contention on a lock.
VARIANTS = {
    "io_fetch_threads": ("py", "io_fetch_threads.py", "threads", None, 1),
    "cpu_primes_procs": ("py", "cpu_primes_procs.py", "processes", None, 1),
    "cpu_threads_gil": ("py", "cpu_threads_gil.py", "threads", None, 1),
    "hybrid_pipeline": ("py", "hybrid_pipeline.py", "threads (fetch) + processes", "fetch", 1),
    "sweep_global_lock": ("c", "sweep_global_lock", "threads", "locked-worker", 2),
    "sweep_parallel_cpu": ("c", "sweep_parallel_cpu", "threads", "free-worker", 2),
}
WORKER_COUNTS = "1,2,4,8"
PASS_RATIO = 0.90  # within 10% of the best measured throughput


def start_server(python, work):
    """slow_http.py on a free loopback port; returns (process, port)."""
    portfile = os.path.join(work, "port")
    if os.path.exists(portfile):
        os.unlink(portfile)
    proc = subprocess.Popen([python, os.path.join(WORKLOADS, "slow_http.py"), portfile, "40"])
    for _ in range(200):
        if os.path.exists(portfile):
            return proc, open(portfile).read().strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SystemExit("slow_http.py did not start")


def fmt(v, spec=".2f"):
    return "n/a" if v is None else format(v, spec)


def point_at(sweep, workers):
    for p in sweep.get("points", []):
        if p.get("workers") == workers:
            return p
    return None


def row(name, model, sweep):
    """One markdown row from a poolprof.sweep/1 document."""
    rec = sweep.get("recommendation") or {}
    best = sweep.get("best") or {}
    amdahl = sweep.get("amdahl") or {}
    usl = sweep.get("usl") or {}
    rw = rec.get("workers")
    pt = point_at(sweep, rw)
    # The sweep's own ratio when it gives one; else best median / median at the recommended
    # count (throughput is work / wall and the work is fixed); n/a when that count was not swept.
    ratio = rec.get("throughput_vs_best")
    if ratio is None and pt and best.get("median_seconds") and pt.get("median_seconds"):
        ratio = best["median_seconds"] / pt["median_seconds"]
    verdict = "n/a" if ratio is None else ("PASS" if ratio >= PASS_RATIO else "FAIL")
    predicted = pt.get("predicted_speedup") if pt else None
    if predicted is None:
        predicted = rec.get("predicted_speedup")
    sigma, kappa = usl.get("sigma"), usl.get("kappa")
    return [
        name,
        model,
        f"{rec.get('model', '?')} x {rw if rw is not None else '?'}" + (f" ({rec['stage']})" if rec.get("stage") else ""),
        str(best.get("workers", "n/a")),
        f"{fmt(ratio)} {verdict}",
        fmt(predicted),
        fmt(pt.get("speedup") if pt else None),
        fmt(amdahl.get("serial_fraction"), ".3f"),
        f"{fmt(sigma, '.3f')} / {fmt(kappa, '.4f')}",
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(ROOT, "build", "poolprof"))
    ap.add_argument("--repeat", type=int, default=3, help="runs per worker count (default 3)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter for the Python variants and the server")
    ap.add_argument("--keep", metavar="DIR", help="keep the sweep JSON files in DIR")
    a = ap.parse_args()

    poolprof = os.path.abspath(a.poolprof)
    fixtures = os.path.join(os.path.dirname(poolprof), "tests", "fixtures")
    names = [n for n in a.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if not os.access(poolprof, os.X_OK):
        raise SystemExit(f"no poolprof executable at {poolprof}")

    work = tempfile.mkdtemp(prefix="poolprof-sweep.")
    out_dir = os.path.abspath(a.keep) if a.keep else work
    os.makedirs(out_dir, exist_ok=True)
    header = ["variant", "program's model", "recommended", "measured best count",
              f"throughput rec/best (PASS >= {PASS_RATIO:.2f})", "predicted speedup at rec",
              "measured speedup at rec", "Amdahl serial fraction", "USL sigma / kappa"]
    rows, failed = [], 0
    for name in names:
        kind, file, model, stage, profile_at = VARIANTS[name]
        cmd = [a.python, os.path.join(WORKLOADS, file)] if kind == "py" else [os.path.join(fixtures, file)]
        out = os.path.join(out_dir, f"{name}.sweep.json")
        argv = [poolprof, "sweep", "--workers", WORKER_COUNTS, "--repeat", str(a.repeat), "--json", out]
        if stage:
            argv += ["--stage", stage]
        argv += ["--profile-at", str(profile_at), "--", *cmd, "{workers}"]
        # A fresh server per variant: no connection backlog or thread left over from the last one.
        server, port = start_server(a.python, work)
        try:
            print(f"sweeping {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
            r = subprocess.run(argv, env=dict(os.environ, REF_PORT=port), cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        finally:
            server.kill()
            server.wait()
        if r.returncode != 0 or not os.path.exists(out):
            tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            rows.append([name, model, f"sweep failed (exit {r.returncode}): {tail}"] + [""] * (len(header) - 3))
            failed += 1
            continue
        sweep = json.load(open(out))
        if sweep.get("schema") != "poolprof.sweep/1":
            print(f"warning: {out}: schema {sweep.get('schema')!r}, expected poolprof.sweep/1", file=sys.stderr)
        rows.append(row(name, model, sweep))
        if "FAIL" in rows[-1][4]:
            failed += 1

    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    if a.keep:
        print(f"\nsweep JSON kept in {out_dir}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
