#!/usr/bin/env python3
"""sampler_overhead.py: wall-time overhead and self-report of the ptrace sampler on the reference workloads.

usage: bench/sampler_overhead.py [--poolprof build/poolprof] [--rounds 5] [--workloads a,b] [--configs k,k] [--quick] [--raw FILE]
                                 [--seed N] [--python /usr/bin/python3]

Configurations, all run in the same rounds (each round runs every configuration of a
workload once, in a freshly shuffled order, so all see the same machine noise):

  plain        the command, unprofiled
  states-1k    poolprof run --no-preload --stacks none   --rate 1000   (thread states only: from the
               kernel's switch records where CPU-wide perf events are allowed, the tracer waking
               at 100 Hz)
  ticks-1k     the same with POOLPROF_SWITCHES=0: states from 1000 ticks a second, as where
               switch records are refused
  native-100   poolprof run --no-preload --stacks native --rate 100
  native-1k    poolprof run --no-preload --stacks native --rate 1000
  newest-1k    the same with POOLPROF_NATIVE_BATCH=0: a tick at every 1/rate unwinding each running
               thread's newest kernel copy (the default unwinds every copy at a 100 Hz tick)
  task-1k      the same with POOLPROF_PERF_SCOPE=task: per-task inherited perf events, as
               where CPU-wide ones are refused (the default: one event per CPU, filtered)
  stops-1k     the same with POOLPROF_NATIVE=ptrace: every native stack by a ptrace stop, as
               where perf events are refused (the default takes running threads' stacks
               from the kernel's perf-event copies and stops only blocked threads)
  python-100   poolprof run --no-preload --stacks python --rate 100    (Python workloads only)
  strace       strace -c -f -o /dev/null CMD                           (reference point)
  perf-stat    perf stat -o /dev/null -- CMD     (software events only on this VM; reference)
  plain-again  the command unprofiled a second time in the round: an A/A control, whose ratio to
               plain is this run's own noise at the workload (ideally 1.000)

Two wall times per run. The workload's own (the ratio the targets apply to): bench/walltime,
built beside poolprof, runs innermost in every configuration, the plain one included, and
times the command from its fork to its exit, so what is compared is the target slowed by
the profiler. End to end: around the whole command (for poolprof: start, merge and report
included, what a user waits for), shown in a second table. Ratio = median(config) /
median(plain) of the same invocation. From every poolprof run the last H line of
RUNDIR/sampler.rec gives the sampler's self-report; the tables show the median over rounds
(attach latency: also the worst); from each python-100 run also what it read of CPython (the
versions its P lines name, refusals, Python samples, stacks with Python frames), so that a ratio
near 1.0 from a sampler that read nothing shows as such. The header names the --python
interpreter and its version. bench/wake_micro measures, in the same run, what one bare
timer wake-up of a thread costs on this machine while every CPU is busy: the floor under
the tracer's CPU per tick. Targets are marked PASS/MISS. The Markdown goes to stdout,
progress to stderr. The machine is shared and noisy: compare ratios, not times.
"""
import argparse, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "reference"))

# key, label, poolprof args (None: not poolprof), python only, wall-ratio target, extra environment
CONFIGS = [
    ("plain", "plain", None, False, None, {}),
    ("states-1k", "states 1 kHz", ["--no-preload", "--stacks", "none", "--rate", "1000"], False, 1.01, {}),
    ("ticks-1k", "states 1 kHz by ticks", ["--no-preload", "--stacks", "none", "--rate", "1000"], False, None,
     {"POOLPROF_SWITCHES": "0"}),
    ("native-100", "native 100 Hz", ["--no-preload", "--stacks", "native", "--rate", "100"], False, 1.01, {}),
    ("native-1k", "native 1 kHz", ["--no-preload", "--stacks", "native", "--rate", "1000"], False, 1.05, {}),
    ("newest-1k", "native 1 kHz, 1000 ticks", ["--no-preload", "--stacks", "native", "--rate", "1000"], False, None,
     {"POOLPROF_NATIVE_BATCH": "0"}),
    ("task-1k", "native 1 kHz per-task events", ["--no-preload", "--stacks", "native", "--rate", "1000"], False, None,
     {"POOLPROF_PERF_SCOPE": "task"}),
    ("stops-1k", "native 1 kHz by stops", ["--no-preload", "--stacks", "native", "--rate", "1000"], False, None,
     {"POOLPROF_NATIVE": "ptrace"}),
    ("python-100", "python 100 Hz", ["--no-preload", "--stacks", "python", "--rate", "100"], True, 1.01, {}),
    ("strace", "strace -c -f", None, False, None, {}),
    ("perf-stat", "perf stat", None, False, None, {}),
    ("plain-again", "plain again", None, False, None, {}),
]
LABEL = {c[0]: c[1] for c in CONFIGS}
UNWIND_NS_PER_FRAME = 500.0
STOP_P50_US = 30.0
STOP_P99_US = 1000.0
ATTACH_MS = 10.0


def verdict(ok):
    return "PASS" if ok else "MISS"


def last_h_line(path):
    """Fields of the last complete H line of sampler.rec (a torn last line is ignored), with
    t_span: ns from the O line (sampler started) to that H line."""
    h, t0 = None, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("O ") and t0 is None:
                    for tok in line.split()[1:]:
                        if tok.startswith("t="):
                            t0 = float(tok[2:])
                if not line.startswith("H ") or not line.endswith("\n"):
                    continue
                kv = {}
                for tok in line.split()[1:]:
                    k, _, v = tok.partition("=")
                    try:
                        kv[k] = float(v)
                    except ValueError:
                        pass
                h = kv
    except OSError:
        pass
    if h is not None and t0 is not None and h.get("t"):
        h["t_span"] = h["t"] - t0
    return h


def python_read(path):
    """What the sampler read of CPython in sampler.rec: versions its P lines name (3.12 as 312),
    their refusals (pyerr=), Python samples (each thread's last G line's n, summed) and distinct
    stacks with Python frames (K lines with a non-empty py=). Zeros where nothing was read."""
    versions, refused, last_n, stacks = set(), 0, {}, 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    continue
                if line.startswith("P "):
                    kv = dict(tok.partition("=")[::2] for tok in line.split()[1:])
                    if kv.get("python", "0") not in ("", "0"):
                        versions.add(kv["python"])
                    if kv.get("pyerr"):
                        refused += 1
                elif line.startswith("G "):
                    kv = dict(tok.partition("=")[::2] for tok in line.split()[1:])
                    try:
                        last_n[(kv.get("pid"), kv.get("tid"))] = int(kv.get("n", "0"))
                    except ValueError:
                        pass
                elif line.startswith("K ") and " py=" in line and not line.rstrip("\n").endswith(" py="):
                    stacks += 1
    except OSError:
        pass
    return {"py_versions": sorted(versions), "py_refused": refused, "py_samples": sum(last_n.values()),
            "py_stacks": stacks}


def monitor_cpu_ns(path):
    """The /proc monitor's own CPU (ns) from the last C line of monitor.rec, or None."""
    v = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("C ") and line.endswith("\n"):
                    for tok in line.split()[1:]:
                        if tok.startswith("self_cpu_ns="):
                            v = float(tok[len("self_cpu_ns="):])
    except (OSError, ValueError):
        pass
    return v


def timed(argv, env, cwd, timeout, stderr_path=None):
    """Run argv in its own session, stdout discarded, stderr to stderr_path (or discarded);
    (wall s, exit code). A timeout kills that session only."""
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    t = time.perf_counter()
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            rc = "timeout"
    finally:
        if stderr_path:
            err.close()
    return time.perf_counter() - t, rc


def timed_round(r, label, argv, env, cwd, timeout, twfile, stderr_path=None):
    """One run of argv whose workload bench/walltime times into twfile: its end-to-end and own
    wall times appended to r["wall"] and r["twall"], or a failure counted in r["fail"] and said
    on stderr (label). True when it ran."""
    try:
        os.unlink(twfile)
    except FileNotFoundError:
        pass
    wall, rc = timed(argv, env, cwd, timeout, stderr_path)
    try:
        twall = int(open(twfile).read()) / 1e9
    except (OSError, ValueError):
        twall = None
    if rc != 0 or twall is None:
        r["fail"] += 1
        print(f"  {label}: exit {rc}", file=sys.stderr)
        return False
    r["wall"].append(wall)
    r["twall"].append(twall)
    return True


def ratio_cell(q, runs, plain_runs, failed, label, target, track, name):
    """A ratio table's cell: q (median of runs over plain_runs' median), judged against target
    (None: no target) and recorded with track(what, q, name, ok, interval), and how many runs failed."""
    c = f"{q:.3f}"
    if target is not None:
        ok = q <= target
        c += f" {verdict(ok)}"
        track(f"{label} wall ratio ≤ {target:.2f}", q, name, ok, interval(runs, plain_runs))
    if failed:
        c += f" ({failed} failed)"
    return c


def select_configs(who, configs, wanted, labels):
    """The configurations of the comma-separated keys in wanted (plain always), or all of configs
    when wanted is empty; None after saying on stderr which keys are unknown."""
    if not wanted:
        return configs
    want = {k for k in wanted.split(",") if k} | {"plain"}
    unknown = want - set(labels)
    if unknown:
        print(f"{who}: unknown configuration(s) {', '.join(sorted(unknown))} (known: {', '.join(labels)})",
              file=sys.stderr)
        return None
    return [c for c in configs if c[0] in want]


def find_tools(who, poolprof, *tools):
    """poolprof's absolute path and the bench programs built beside it (build/bench/NAME), or None
    after saying on stderr which one is missing."""
    poolprof = os.path.abspath(poolprof)
    if not os.access(poolprof, os.X_OK):
        print(f"{who}: no poolprof executable at {poolprof} (use --poolprof)", file=sys.stderr)
        return None
    paths = [os.path.join(os.path.dirname(poolprof), "bench", t) for t in tools]
    for tool in paths:
        if not os.access(tool, os.X_OK):
            print(f"{who}: no {tool} (build the project: cmake --build build)", file=sys.stderr)
            return None
    return (poolprof, *paths)


def med(v):
    return statistics.median(v) if v else None


def interval(xs, base, n=2000, seed=1):
    """90% bootstrap interval of median(xs) / median(base): each list resampled with
    replacement, as the rounds might have come out on this machine."""
    if len(xs) < 3 or len(base) < 3:
        return None
    rng = random.Random(seed)
    qs = sorted(statistics.median(rng.choices(xs, k=len(xs))) / statistics.median(rng.choices(base, k=len(base)))
                for _ in range(n))
    return qs[int(0.05 * n)], qs[int(0.95 * n) - 1]


def fmt(v, spec, none="–"):
    return none if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="", help="comma-separated names (default: all in expected.json)")
    ap.add_argument("--quick", action="store_true", help="2 rounds, a smoke test of the benchmark (not for bench/RESULTS.md)")
    ap.add_argument("--configs", default="", help="comma-separated configuration keys to run besides plain "
                    "(default: all), e.g. states-1k,native-100,python-100 for more rounds of the targets alone")
    ap.add_argument("--seed", type=int, default=None, help="seed of the per-round order shuffle")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--raw", default="", help="also write every run's figures (per configuration, in round order) "
                    "to this JSON file")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per single run before it is killed")
    a = ap.parse_args()
    rounds = 2 if a.quick else a.rounds
    if rounds < 1:
        ap.error("--rounds wants at least 1")
    found = find_tools("sampler_overhead", a.poolprof, "walltime", "wake_micro")
    if not found:
        return 2
    poolprof, walltime, wake_micro = found
    spec = json.load(open(os.path.join(REF, "expected.json")))["workloads"]
    names = [n for n in a.workloads.split(",") if n] or list(spec)
    for n in names:
        if n not in spec:
            print(f"sampler_overhead: unknown workload '{n}' (known: {', '.join(spec)})", file=sys.stderr)
            return 2
    configs = [c for c in CONFIGS if not (c[0] == "strace" and not shutil.which("strace"))
               and not (c[0] == "perf-stat" and not shutil.which("perf"))]
    skipped_tools = sorted({"strace", "perf-stat"} - {c[0] for c in configs})
    if a.configs:
        configs = select_configs("sampler_overhead", configs, a.configs, LABEL)
        if configs is None:
            return 2
        skipped_tools = []
    rng = random.Random(a.seed)
    try:
        pyver = subprocess.run([a.python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                               text=True, timeout=30).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        pyver = "?"

    work = tempfile.mkdtemp(prefix="poolprof-sbench.")
    portfile = os.path.join(work, "port")
    server = subprocess.Popen([a.python, os.path.join(REF, "slow_http.py"), portfile, "40"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}   # name -> key -> {"wall": [...], "h": [...], "fail": n}
    cfg_of = {}    # name -> configs used
    t_start = time.time()
    try:
        for _ in range(200):
            if os.path.exists(portfile) and open(portfile).read().strip():
                break
            time.sleep(0.05)
        env = dict(os.environ, REF_PORT=open(portfile).read().strip())
        cmds = {}
        for name in names:
            kind, file = spec[name]["run"]
            if kind == "c":
                exe = os.path.join(work, file)
                subprocess.run(["cc", "-O2", "-g", "-pthread", "-o", exe, os.path.join(REF, "workloads", file + ".c")],
                               check=True)
                cmds[name] = [exe]
            else:
                cmds[name] = [a.python, os.path.join(REF, "workloads", file)]
            cfg_of[name] = [c for c in configs if kind != "c" or not c[3]]
            results[name] = {c[0]: {"wall": [], "twall": [], "h": [], "fail": 0} for c in cfg_of[name]}
        # The floor: CPU per bare timer wake-up at 1 kHz with every CPU busy, median of 5.
        wakes = []
        for _ in range(5):
            try:
                out = subprocess.run([wake_micro, "1000", "1"], capture_output=True, text=True, timeout=30).stdout
            except subprocess.TimeoutExpired:
                out = ""
            if out.startswith("wake_us="):
                wakes.append(float(out.split()[0].split("=")[1]))
        wake_us = med(wakes)
        seq = 0
        twfile = os.path.join(work, "walltime")
        for name in names:
            cmd = [walltime, twfile, *cmds[name]]
            # One warm-up of the plain command (page cache, pyc files), not counted.
            timed(cmds[name], env, work, a.timeout)
            for rnd in range(rounds):
                order = list(cfg_of[name])
                rng.shuffle(order)
                for key, _label, pp_args, _py, _target, extra in order:
                    rundir = None
                    if key in ("plain", "plain-again"):
                        argv = cmd
                    elif key == "strace":
                        argv = ["strace", "-c", "-f", "-o", "/dev/null", *cmd]
                    elif key == "perf-stat":
                        argv = ["perf", "stat", "-o", "/dev/null", "--", *cmd]
                    else:
                        seq += 1
                        rundir = os.path.join(work, f"run-{seq}")
                        argv = [poolprof, "run", *pp_args, "-o", rundir, "--", *cmd]
                    r = results[name][key]
                    timed_round(r, f"{name} {key} round {rnd + 1}", argv, dict(env, **extra), work, a.timeout, twfile)
                    if rundir:
                        h = last_h_line(os.path.join(rundir, "sampler.rec"))
                        if h:
                            h["monitor_cpu_ns"] = monitor_cpu_ns(os.path.join(rundir, "monitor.rec"))
                            if key == "python-100":
                                h.update(python_read(os.path.join(rundir, "sampler.rec")))
                            r["h"].append(h)
                        shutil.rmtree(rundir, ignore_errors=True)
                print(f"{name}: round {rnd + 1}/{rounds} done ({time.time() - t_start:.0f} s)", file=sys.stderr,
                      flush=True)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    if a.raw:
        with open(a.raw, "w") as f:
            json.dump({"rounds": rounds, "results": results}, f)
    print_tables(names, cfg_of, results, rounds, skipped_tools, time.time() - t_start, wake_us,
                 f"{a.python} (Python {pyver})")
    return 0


def summarize(r):
    """Medians of a poolprof configuration's self-report over its runs."""
    hs = r["h"]
    if not hs:
        return None
    g = lambda k: [h.get(k, 0.0) for h in hs]
    stops = med(g("stops"))
    per_frame = [h["unwind_ns"] / h["unwind_frames"] for h in hs if h.get("unwind_frames")]
    attach = [h["attach_latency_max_ns"] / 1e6 for h in hs if h.get("attach_latency_max_ns")]
    late_pct = [100.0 * h.get("late", 0) / h["ticks"] for h in hs if h.get("ticks")]
    return {
        "stops": stops,
        "p50": med([h["stop_p50_ns"] / 1e3 for h in hs if h.get("stops")]),
        "p99": med([h["stop_p99_ns"] / 1e3 for h in hs if h.get("stops")]),
        "hz": med(g("achieved_hz")),
        "late": med(g("late")),
        "late_pct": med(late_pct),
        "errors": med(g("errors")),
        "errors_max": max(g("errors")),
        "unwind_mean": med(per_frame),
        "unwind": med([h["unwind_p50_ns_per_frame"] for h in hs if h.get("unwind_p50_ns_per_frame")]),
        "irq50": med([h["irq_p50_ns"] / 1e3 for h in hs if h.get("irq_p50_ns")]),
        "irq99": med([h["irq_p99_ns"] / 1e3 for h in hs if h.get("irq_p99_ns")]),
        "attach": med(attach),
        "cpu_pct": med([100.0 * h["self_cpu_ns"] / h["t_span"] for h in hs if h.get("self_cpu_ns") and h.get("t_span")]),
        "mon_pct": med([100.0 * h["monitor_cpu_ns"] / h["t_span"] for h in hs if h.get("monitor_cpu_ns") and h.get("t_span")]),
        "tick_us": med([h["self_cpu_ns"] / h["ticks"] / 1e3 for h in hs if h.get("self_cpu_ns") and h.get("ticks")]),
        "attach_max": max(attach) if attach else None,
        "n": len(hs),
    }


def print_tables(names, cfg_of, results, rounds, skipped_tools, elapsed, wake_us, python):
    keys = [c[0] for c in CONFIGS if any(c[0] in results[n] for n in names)]
    target = {c[0]: c[4] for c in CONFIGS}
    worst = {}  # target label -> (value, workload/config, ok, 90% interval or None)

    def track(label, value, where, ok, iv=None):
        cur = worst.get(label)
        if cur is None or (not ok and cur[2]) or (ok == cur[2] and value > cur[0]):
            worst[label] = (value, where, ok, iv)

    def ratio_table(field, targets):
        print("| workload | plain s | " + " | ".join(LABEL[k] for k in keys if k != "plain") + " |")
        print("|---|---|" + "---|" * (len(keys) - 1))
        ratios = {k: [] for k in keys}
        for n in names:
            base = med(results[n]["plain"][field]) if "plain" in results[n] else None
            cells = [fmt(base, ".3f")]
            for k in keys:
                if k == "plain":
                    continue
                r = results[n].get(k)
                if r is None:
                    cells.append("n/a")
                    continue
                m = med(r[field])
                if m is None or not base:
                    cells.append("failed")
                    continue
                q = m / base
                ratios[k].append(q)
                cells.append(ratio_cell(q, r[field], results[n]["plain"][field], r["fail"], LABEL[k],
                                        target[k] if targets else None, track, n))
            print(f"| {n} | " + " | ".join(cells) + " |")
        print("| median | | " + " | ".join(
            (fmt(med(ratios[k]), ".3f") +
             (f" {verdict(med(ratios[k]) <= target[k])}" if targets and target[k] and ratios[k] else ""))
            for k in keys if k != "plain") + " |")
        print()

    print(f"Sampler overhead, `bench/sampler_overhead.py --rounds {rounds}` ({time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} CPUs, {elapsed / 60:.0f} min): median over {rounds} interleaved rounds, "
          f"ratio = median(config) / median(plain). Python workloads run by {python}.")
    if skipped_tools:
        print(f"\n(not installed, skipped: {', '.join(skipped_tools)})")
    print()
    print("The workload's own wall time (bench/walltime inside every configuration):")
    print()
    ratio_table("twall", True)
    print("Targets: states 1 kHz ≤ 1.01, native 100 Hz ≤ 1.01, native 1 kHz ≤ 1.05, python 100 Hz ≤ 1.01 "
          "(strace and perf stat: reference points, no target).")
    print()
    print("End to end (the whole command: for poolprof, start, merge and report included):")
    print()
    ratio_table("wall", False)
    print(f"Floor: one bare timer wake-up of a thread costs {fmt(wake_us, '.1f')} µs of CPU here while every "
          "CPU is busy (bench/wake_micro at 1 kHz, median of 5); compare the tracer's µs per tick below.")
    print()
    print("Sampler self-report (last H line of sampler.rec, median over rounds; attach: median / worst). "
          "CPU % is of one CPU over the sampler's life; the /proc monitor's (monitor.rec) beside the tracer's:")
    print()
    print("| workload | config | stops | stop p50 µs | stop p99 µs | achieved Hz | late ticks | errors "
          "| unwind ns/frame p50 (mean) | interrupt→resume p50 / p99 µs | attach max ms | tracer CPU % | tracer µs/tick "
          "| monitor CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        for k in keys:
            r = results[n].get(k)
            if r is None or not r["h"]:
                continue
            s = summarize(r)
            where = f"{n}, {LABEL[k]}"
            p50 = p99 = unw = att = "–"
            irq = f"{s['irq50']:.1f} / {s['irq99']:.1f}" if s["irq50"] is not None and s["irq99"] is not None else "–"
            if s["p50"] is not None:
                ok = s["p50"] <= STOP_P50_US
                track(f"stop p50 ≤ {STOP_P50_US:.0f} µs", s["p50"], where, ok)
                p50 = f"{s['p50']:.1f} {verdict(ok)}"
            if s["p99"] is not None:
                ok = s["p99"] <= STOP_P99_US
                track(f"stop p99 ≤ {STOP_P99_US:.0f} µs", s["p99"], where, ok)
                p99 = f"{s['p99']:.1f} {verdict(ok)}"
            if s["unwind"] is not None:
                ok = s["unwind"] <= UNWIND_NS_PER_FRAME
                track(f"unwind ≤ {UNWIND_NS_PER_FRAME:.0f} ns/frame", s["unwind"], where, ok)
                unw = f"{s['unwind']:.0f} {verdict(ok)}" + (f" ({s['unwind_mean']:.0f})" if s["unwind_mean"] is not None else "")
            if s["attach"] is not None:
                ok = s["attach_max"] <= ATTACH_MS
                track(f"child sampled ≤ {ATTACH_MS:.0f} ms after fork", s["attach_max"], where, ok)
                att = f"{s['attach']:.2f} / {s['attach_max']:.2f} {verdict(ok)}"
            late = f"{s['late']:.0f} ({s['late_pct']:.1f}%)" if s["late_pct"] is not None else fmt(s["late"], ".0f")
            err = f"{s['errors']:.0f}" + (f" (max {s['errors_max']:.0f})" if s["errors_max"] != s["errors"] else "")
            print(f"| {n} | {LABEL[k]} | {s['stops']:.0f} | {p50} | {p99} | {s['hz']:.0f} | {late} | {err} "
                  f"| {unw} | {irq} | {att} | {fmt(s['cpu_pct'], '.1f')} | {fmt(s['tick_us'], '.1f')} "
                  f"| {fmt(s['mon_pct'], '.1f')} |")
    print()
    pyrows = [(n, results[n]["python-100"]["h"]) for n in names
              if "python-100" in results[n] and results[n]["python-100"]["h"]]
    if pyrows:
        print("Python stacks read in the python 100 Hz runs (sampler.rec: CPython versions named by its P lines, "
              "refusals, Python samples summed over threads, distinct stacks with Python frames; median over rounds, "
              "range in brackets):")
        print()
        print("| workload | CPython read | refusals | Python samples | stacks with Python frames |")
        print("|---|---|---|---|---|")
        for n, hs in pyrows:
            vers = sorted({v for h in hs for v in h.get("py_versions", [])})
            rng_of = lambda k: (f"{med([h.get(k, 0) for h in hs]):.0f} "
                                f"[{min(h.get(k, 0) for h in hs)}-{max(h.get(k, 0) for h in hs)}]")
            print(f"| {n} | {', '.join(v[0] + '.' + v[1:] for v in vers) or 'none'} "
                  f"| {sum(h.get('py_refused', 0) for h in hs)} | {rng_of('py_samples')} | {rng_of('py_stacks')} |")
        print()
    print("Worst case per target:")
    print()
    print("| target | worst | 90% interval | where | result |")
    print("|---|---|---|---|---|")
    for label, (v, where, ok, iv) in worst.items():
        ivs = f"{iv[0]:.3f}–{iv[1]:.3f}" if iv else "–"
        print(f"| {label} | {v:.3f} | {ivs} | {where} | {verdict(ok)} |" if "ratio" in label
              else f"| {label} | {v:.1f} | – | {where} | {verdict(ok)} |")
    print()
    print("90% interval: bootstrap of the ratio of medians, each configuration's and plain's runs "
          "resampled with replacement (2000 draws). `plain again` is the unprofiled command run a "
          "second time in every round: its ratio is what this run's noise alone gives.")


if __name__ == "__main__":
    sys.exit(main())
