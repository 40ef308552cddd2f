#!/usr/bin/env python3
"""accuracy.py: is poolprof's verdict right on programs it was never tuned on? The truth corpus measured, and each verdict scored against the best.

usage: bench/accuracy.py [--poolprof build/poolprof] [--baseline OTHER_POOLPROF] [--only a,b]
                         [--repeat 3] [--profiles 5] [--json OUT] [--work build/corpus]
                         [--smoke] [--list]

For every program of bench/corpus/ (format: bench/corpus/README.md) it
  1. builds and prepares it once (never timed),
  2. profiles it as written with `poolprof run` PROFILES times and reads the verdict of the
     scored stage (the overall one unless the program names a stage),
  3. times every configuration of its sweep grid and the configuration poolprof recommends
     (per model: the median count and chunksize of the profiles that chose it), REPEAT times
     each, interleaved (each round in a shuffled order), then 2 x REPEAT more rounds of those
     within 15% of the fastest and of the recommended ones, and takes the median wall time of
     each,
and prints one row a program (with --baseline, another build's verdicts are profiled and
scored in the same run, against the same timings, beside this build's): the verdict (the most frequent of the profiles), the
configuration measured fastest, the throughput of the recommended configuration over the
best (>= 0.90 counts as reaching the best), whether the model was the same in every
profile, and the coherence checks (no stage without CPU or I/O predicting a speedup above
1.0; no runner-up predicted faster than the verdict). Totals against the targets follow.

--smoke checks the corpus and the harness quickly (CI, under 3 minutes): every program.json
is valid, and the first program of each kind whose packages are present builds, prepares,
runs each model once at its smallest count and is profiled once. It scores nothing. Exit status: 0, or 1 when a program fails to build or run
or a manifest is invalid; programs whose Debian packages are missing are skipped with the
package named (bench/corpus/setup.sh installs them).
A benchmark, not a test: wall times depend on the machine and its load; read the ratios.
"""
import argparse
import collections
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
CORPUS = os.path.join(HERE, "corpus")
MODELS = ("sequential", "threads", "processes", "async", "hybrid")
KINDS = ("python", "native", "shell", "tool")
PYTHON = "/usr/bin/python3"
REACH = 0.90          # the recommended configuration's throughput over the best that counts as reaching it
CLOSE = 1.15          # configurations within this of the fastest median are timed again, 2 x REPEAT more rounds
MAX_WORKERS = 256     # a recommended count above this is timed at this count, and the row says so
TIMEOUT = 120         # seconds a single configuration may take before it counts as failed


class Bad(Exception):
    """A program that cannot be run as its manifest says: named in one line."""


def load(name):
    d = os.path.join(CORPUS, name)
    path = os.path.join(d, "program.json")
    try:
        p = json.load(open(path))
    except (OSError, ValueError) as e:
        raise Bad(f"{name}: program.json: {e}")
    p["name"], p["dir"] = name, d
    for key in ("what", "kind", "models", "as_written"):
        if key not in p:
            raise Bad(f"{name}: program.json has no '{key}'")
    if p["kind"] not in KINDS:
        raise Bad(f"{name}: kind '{p['kind']}' is not one of {', '.join(KINDS)}")
    if not isinstance(p["models"], dict) or not p["models"]:
        raise Bad(f"{name}: 'models' must name at least one model")
    for m, spec in p["models"].items():
        if m not in MODELS:
            raise Bad(f"{name}: model '{m}' is not one of {', '.join(MODELS)}")
        if not isinstance(spec.get("cmd"), list) or not spec["cmd"]:
            raise Bad(f"{name}: model '{m}' has no 'cmd' list")
        if m != "sequential":
            ws = spec.get("workers")
            if not isinstance(ws, list) or not ws or not all(isinstance(w, int) and w >= 1 for w in ws):
                raise Bad(f"{name}: model '{m}' needs a 'workers' list of counts >= 1")
            if not any("{workers}" in a for a in spec["cmd"]):
                raise Bad(f"{name}: model '{m}' has a worker list but no {{workers}} in its command")
    aw = p["as_written"]
    if aw.get("model") == "sequential":
        aw.setdefault("workers", 1)
    if aw.get("model") not in p["models"]:
        raise Bad(f"{name}: as_written model '{aw.get('model')}' is not one of its models")
    if not isinstance(aw.get("workers"), int) or aw["workers"] < 1:
        raise Bad(f"{name}: as_written needs a worker count >= 1")
    p.setdefault("debian", [])
    p.setdefault("upstream", None)
    p.setdefault("stage", None)
    p.setdefault("same_output", False)
    return p


def programs(only):
    names = sorted(n for n in os.listdir(CORPUS) if os.path.isfile(os.path.join(CORPUS, n, "program.json")))
    if only:
        unknown = set(only) - set(names)
        if unknown:
            sys.exit(f"accuracy.py: no corpus program {', '.join(sorted(unknown))}")
        names = [n for n in names if n in only]
    return names


def missing_packages(p):
    out = []
    for pkg in p["debian"]:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            out.append(pkg)
    return out


def subst(argv, p, workers=None, chunk=None):
    out = []
    for a in argv:
        a = a.replace("{dir}", p["dir"]).replace("{bin}", p["bin"]).replace("{data}", p["data"])
        a = a.replace("{python}", PYTHON).replace("{chunksize}", str(chunk or 1))
        if workers is not None:
            a = a.replace("{workers}", str(workers))
        out.append(a)
    return out


def batches(p, model):
    """Can the program run this model with tasks batched ({chunksize} in its command)?"""
    return any("{chunksize}" in a for a in p["models"].get(model, {}).get("cmd", []))


def stamp_ok(path, text):
    try:
        return open(path).read() == text
    except OSError:
        return False


def ready(p, work):
    """Build and prepare once, under WORK/NAME; redone only when the command or the program's files change."""
    base = os.path.join(work, p["name"])
    p["bin"], p["data"] = os.path.join(base, "bin"), os.path.join(base, "data")
    h = hashlib.sha256()
    for f in sorted(os.listdir(p["dir"])):
        fp = os.path.join(p["dir"], f)
        if os.path.isfile(fp):
            h.update(f.encode() + open(fp, "rb").read())
    for step, where in (("build", p["bin"]), ("prepare", p["data"])):
        if step not in p:
            os.makedirs(where, exist_ok=True)
            continue
        key = json.dumps(p[step]) + h.hexdigest()
        stamp = os.path.join(base, step + ".done")
        if stamp_ok(stamp, key):
            continue
        shutil.rmtree(where, ignore_errors=True)
        os.makedirs(where)
        r = subprocess.run(subst(p[step], p), capture_output=True, text=True, timeout=600, cwd=where)
        if r.returncode != 0:
            raise Bad(f"{p['name']}: {step} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
        open(stamp, "w").write(key)


def config_cmd(p, model, workers, chunk=None):
    """The command of one configuration (chunk: tasks per message, where the program batches), or None when the program cannot run that model."""
    if model == "sequential":
        if "sequential" in p["models"]:
            return subst(p["models"]["sequential"]["cmd"], p)
        for m in ("threads", "processes", "async"):      # one worker of any pool is the sequential program
            if m in p["models"]:
                return subst(p["models"][m]["cmd"], p, 1)
        return None
    if model not in p["models"]:
        return None
    return subst(p["models"][model]["cmd"], p, min(workers, MAX_WORKERS), chunk)


def grid(p):
    out = []
    for m, spec in p["models"].items():
        for w in ([1] if m == "sequential" else spec["workers"]):
            out.append((m, w))
    return out


def run_once(p, cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=p["data"])
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise Bad(f"{p['name']}: {' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()[-300:]}")
    return wall, hashlib.sha256(r.stdout).hexdigest()


def time_configs(p, configs, repeat, contenders=()):
    """Wall times of each configuration, REPEAT interleaved rounds, each in a shuffled order; then
    2 x REPEAT more rounds of the configurations within CLOSE of the fastest median and of the
    CONTENDERS (the verdicts'). The best of many near-equal configurations, each timed three
    times, is the luckiest of them: on this shared machine processes x 2 and x 4 of one program
    traded places between runs and scored a verdict 0.88-0.90 of a best it equals."""
    walls = {c: [] for c in configs}
    outs = {}

    def rounds(which, n):
        for _ in range(n):
            order = list(which)
            random.shuffle(order)
            for c in order:
                w, digest = run_once(p, config_cmd(p, *c))
                walls[c].append(w)
                outs.setdefault(c, digest)

    rounds(configs, repeat)
    fastest = min(statistics.median(v) for v in walls.values())
    close = [c for c in configs if statistics.median(walls[c]) <= fastest * CLOSE or c in contenders]
    if len(close) > 1:
        rounds(close, 2 * repeat)
    if p["same_output"] and len(set(outs.values())) > 1:
        raise Bad(f"{p['name']}: configurations print different results though same_output is set")
    return walls


def scored_stage(report, stage):
    if stage is None:
        return report.get("overall")
    for s in report.get("stages", []):
        if s.get("name") == stage:
            return s
    return None


def coherence(report):
    """The report's own consistency: stages without CPU or I/O predicting a speedup; runners-up faster than the verdict."""
    idle, faster = [], []
    for s in [report.get("overall")] + report.get("stages", []):
        if not s:
            continue
        rec = s.get("recommendation") or {}
        sp = rec.get("predicted_speedup")
        io = s.get("io") or {}
        cpu, wall = s.get("cpu_seconds") or 0, s.get("wall_seconds") or 0
        no_work = cpu < max(0.005, 0.02 * wall) and (io.get("wait_seconds") or 0) < 0.05 and not io.get("bytes")
        if no_work and sp is not None and sp > 1.0:
            idle.append(f"{s.get('name')}: {rec.get('model')} x {rec.get('workers')} {sp:.2f}x with no CPU or I/O")
        ru = rec.get("runner_up") or {}
        if sp is not None and ru.get("predicted_speedup") is not None and ru["predicted_speedup"] > sp * 1.001 \
                and not rec.get("tie"):
            faster.append(f"{s.get('name')}: runner-up {ru.get('model')} x {ru.get('workers')} "
                          f"{ru['predicted_speedup']:.2f}x over verdict {sp:.2f}x")
    return idle, faster


def profile(p, pp, n):
    """Verdicts of N profiles of the program as written: (model, workers, predicted speedup, confidence, tie) each."""
    aw = p["as_written"]
    cmd = config_cmd(p, aw["model"], aw["workers"])
    verdicts, idle, faster = [], [], []
    tmp = tempfile.mkdtemp(prefix="poolprof-acc.")
    try:
        for i in range(n):
            run, js = os.path.join(tmp, f"run{i}"), os.path.join(tmp, f"r{i}.json")
            r = subprocess.run([pp, "run", "-o", run, "--format", f"json={js}", "--", *cmd],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT * 2, cwd=p["data"])
            if not os.path.exists(js):
                raise Bad(f"{p['name']}: poolprof run exited {r.returncode} with no report: "
                          f"{r.stderr.decode(errors='replace').strip()[-300:]}")
            rep = json.load(open(js))
            s = scored_stage(rep, p["stage"])
            if s is None:
                raise Bad(f"{p['name']}: no stage '{p['stage']}' in the report")
            rec = s.get("recommendation") or {}
            verdicts.append((rec.get("model"), rec.get("workers"), rec.get("predicted_speedup"),
                             rec.get("confidence"), rec.get("tie"), rec.get("chunksize") or 0))
            a, b = coherence(rep)
            idle += a
            faster += b
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verdicts, sorted(set(idle)), sorted(set(faster))


def verdict_configs(verdicts):
    """Each model's configuration over the profiles that chose it: the median worker count and
    batch size. One per model, so that near-identical counts (async x 101, 111, 123 ...) are not
    each timed and the verdict scored against the luckiest of them."""
    ws, chunks = collections.defaultdict(list), collections.defaultdict(list)
    for m, w, _sp, _conf, _tie, chunk, *_ in verdicts:
        ws[m].append(1 if m == "sequential" else (w or 1))
        if chunk and chunk > 1:
            chunks[m].append(chunk)
    return {m: (m, int(statistics.median_low(ws[m]))) +
               ((int(statistics.median_low(chunks[m])),) if chunks[m] else ()) for m in ws}


def recommended(p, verdicts):
    """The configuration each verdict's model asks for, None where the program cannot run it."""
    cfg = verdict_configs(verdicts)
    recs = []
    for m, *_ in verdicts:
        c = cfg[m]
        if len(c) > 2 and not batches(p, m):
            c = c[:2]                        # a pool the program cannot batch runs unbatched
        recs.append(c if config_cmd(p, *c) is not None else None)
    return recs


def score(verdicts, recs, med, best, idle, faster):
    models = [v[0] for v in verdicts]
    modal = collections.Counter(models).most_common(1)[0][0]
    shown = verdict_configs(verdicts)[modal]
    modal_cfg = recs[models.index(modal)]
    per_profile = [med[best] / med[c] if c else 0.0 for c in recs]
    return {
        "verdicts": [list(v) for v in verdicts],
        "verdict": cfg_name(shown),
        "runnable": modal_cfg is not None,
        "throughput_vs_best": med[best] / med[modal_cfg] if modal_cfg else 0.0,
        "profiles_reaching_best": sum(s >= REACH for s in per_profile),
        "model_stable": len(set(models)) == 1,
        "models_seen": sorted({str(m) for m in models}),
        "idle_speedups": idle,
        "faster_runner_up": faster,
    }


def cfg_name(c):
    return f"{c[0]} x {c[1]}" + (f" with chunksize {c[2]}" if len(c) > 2 else "")


def judge(p, pp, repeat, nprof, baseline=None):
    verdicts, idle, faster = profile(p, pp, nprof)
    recs = recommended(p, verdicts)
    base = profile(p, baseline, nprof) if baseline else None
    base_recs = recommended(p, base[0]) if base else []
    configs = list(dict.fromkeys(grid(p) + [c for c in recs + base_recs if c]))
    walls = time_configs(p, configs, repeat, contenders=[c for c in recs + base_recs if c])
    med = {c: statistics.median(v) for c, v in walls.items()}
    best = min(med, key=med.get)
    row = {
        "name": p["name"], "kind": p["kind"], "upstream": p["upstream"],
        "as_written": f"{p['as_written']['model']} x {p['as_written']['workers']}",
        "best": cfg_name(best),
        "best_seconds": med[best],
        "medians": {cfg_name(c): v for c, v in med.items()},
        "walls": {cfg_name(c): v for c, v in walls.items()},
    }
    row.update(score(verdicts, recs, med, best, idle, faster))
    if base:
        row["baseline"] = score(base[0], base_recs, med, best, base[1], base[2])
    return row


def smoke(p, pp):
    for m, spec in p["models"].items():
        w = 1 if m == "sequential" else min(spec["workers"])
        run_once(p, config_cmd(p, m, w))
    verdicts, _, _ = profile(p, pp, 1)
    return verdicts[0]


def table(rows):
    based = any("baseline" in r for r in rows)
    out = ["| program | kind | as written | verdict (5 profiles) | measured best | recommended / best | "
           "model stable | coherence |" + (" baseline: verdict, / best, stable |" if based else ""),
           "|---|---|---|---|---|---|---|---|" + ("---|" if based else "")]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['name']} | | | error: {r['error']} | | | | |")
            continue
        seen = "yes" if r["model_stable"] else "no: " + ", ".join(r["models_seen"])
        notes = []
        if r["idle_speedups"]:
            notes.append(f"{len(r['idle_speedups'])} stages without CPU or I/O predict > 1.0x")
        if r["faster_runner_up"]:
            notes.append(f"{len(r['faster_runner_up'])} runners-up faster than the verdict")
        notes = "; ".join(notes) or "ok"
        verdict = r["verdict"] + ("" if r["runnable"] else " (the program cannot run it)")
        kind = r["kind"] + (f" ({r['upstream']})" if r["upstream"] else "")
        line = (f"| {r['name']} | {kind} | {r['as_written']} | {verdict} | {r['best']} "
                f"({r['best_seconds']:.2f} s) | {r['throughput_vs_best']:.2f} "
                f"{'PASS' if r['throughput_vs_best'] >= REACH else 'MISS'} | {seen} | {notes} |")
        b = r.get("baseline")
        if b:
            line += (f" {b['verdict']}{'' if b['runnable'] else ' (cannot run)'}, {b['throughput_vs_best']:.2f}, "
                     f"{'yes' if b['model_stable'] else 'no'} |")
        elif based:
            line += " |"
        out.append(line)
    return "\n".join(out)


def totals(rows, key=None):
    ok = [r for r in rows if "error" not in r]
    if key:
        ok = [dict(r, **r[key]) for r in ok if key in r]
    if not ok:
        return "no program scored"
    n = len(ok)
    reach = sum(r["throughput_vs_best"] >= REACH for r in ok)
    stable = sum(r["model_stable"] for r in ok)
    idle = sum(bool(r["idle_speedups"]) for r in ok)
    faster = sum(bool(r["faster_runner_up"]) for r in ok)
    upstream = sum(bool(r["upstream"]) for r in ok)
    return "\n".join([
        f"- programs scored: {n} ({upstream} real tools or libraries), errors: {len(rows) - n}",
        f"- recommended configuration >= {REACH:.0%} of the best measured throughput: {reach}/{n} = "
        f"{reach / n:.0%} (target >= 90%)",
        f"- same model in every profile: {stable}/{n} = {stable / n:.0%} (target >= 95%)",
        f"- programs with a stage without CPU or I/O predicting a speedup above 1.0: {idle} (target 0)",
        f"- programs with a runner-up predicted faster than the verdict, no tie said: {faster} (target 0)",
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(ROOT, "build", "poolprof"))
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profiles", type=int, default=5)
    ap.add_argument("--baseline")
    ap.add_argument("--json")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "corpus"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.repeat < 1 or a.profiles < 1:
        sys.exit("accuracy.py: --repeat and --profiles take counts >= 1")
    for pp in [a.poolprof] + ([a.baseline] if a.baseline else []):
        if not os.access(pp, os.X_OK):
            sys.exit(f"accuracy.py: no poolprof at {pp} (build it: scripts/setup.sh)")
    names = programs([n for n in a.only.split(",") if n])
    failed, rows, skipped, smoked = 0, [], [], set()
    for name in names:
        try:
            p = load(name)
        except Bad as e:
            print(f"invalid: {e}", file=sys.stderr)
            failed += 1
            continue
        if a.list:
            print(f"{name:28} {p['kind']:8} {p['as_written']['model']} x {p['as_written']['workers']:<4} "
                  f"{', '.join(p['models'])}   {p['what']}")
            continue
        miss = missing_packages(p)
        if miss:
            skipped.append(name)
            print(f"skip: {name}: needs {' '.join(miss)} (bench/corpus/setup.sh installs it)", file=sys.stderr)
            continue
        if a.smoke and p["kind"] in smoked:
            continue
        t0 = time.time()
        try:
            ready(p, a.work)
            if a.smoke:
                smoked.add(p["kind"])
                v = smoke(p, a.poolprof)
                print(f"ok: {name}: ran {len(p['models'])} models; profiled as written: {v[0]} x {v[1]} "
                      f"({time.time() - t0:.1f} s)", file=sys.stderr)
                continue
            r = judge(p, a.poolprof, a.repeat, a.profiles, a.baseline)
            rows.append(r)
            print(f"{name}: verdict {r['verdict']}, best {r['best']}, {r['throughput_vs_best']:.2f} of the best, "
                  f"models {'/'.join(r['models_seen'])} ({time.time() - t0:.0f} s)", file=sys.stderr)
        except (Bad, subprocess.TimeoutExpired) as e:
            print(f"error: {e}", file=sys.stderr)
            rows.append({"name": name, "error": str(e).splitlines()[0][:200]})
            failed += 1
    if a.smoke and not smoked and not failed:
        print("corpus: no program could run (are its packages installed? bench/corpus/setup.sh)", file=sys.stderr)
        return 1
    if a.smoke or a.list:
        ran = f", {len(smoked)} run ({', '.join(sorted(smoked))})" if a.smoke else ""
        print(f"corpus: {len(names)} programs, {failed} failed, {len(skipped)} skipped{ran}", file=sys.stderr)
        return 1 if failed else 0
    print(table(rows))
    print()
    print(totals(rows))
    if a.baseline:
        print()
        print(f"baseline ({a.baseline}), same timings:")
        print(totals(rows, "baseline"))
    if a.json:
        json.dump({"poolprof": a.poolprof, "baseline": a.baseline, "repeat": a.repeat, "profiles": a.profiles,
                   "programs": rows},
                  open(a.json, "w"), indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
