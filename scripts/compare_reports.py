#!/usr/bin/env python3
"""compare_reports.py: checks that two builds of poolprof give the same reports: same fields, same verdicts.

usage:
  compare_reports.py record DIR POOLPROF        run the corpus below with POOLPROF, keeping each run
                                                directory in DIR/NAME and its report in DIR/NAME.json
  compare_reports.py rereport DIR POOLPROF TAG  render every DIR/NAME run again with POOLPROF
                                                (poolprof report --format json) into DIR/NAME.TAG.json,
                                                its terminal summary into DIR/NAME.TAG.terminal and the
                                                run directory's other report files beside them
  compare_reports.py diff A.json B.json [--exact]
  compare_reports.py diffdir DIR TAG_A TAG_B [--exact]
                                                compare DIR/NAME.TAG_A.json with DIR/NAME.TAG_B.json
                                                for every NAME ("run" is DIR/NAME.json)

Two reports of one run directory (rereport with each build) must be equal in every field and
figure (--exact); two runs of one program, one per build, must have the same fields (the set of
key paths, stages matched by name, processes and threads by position) and the same verdict per
stage (class and model). Exit status 0 when everything compared equal, 1 otherwise.

The corpus is the shared reference workloads (../shared/reference, when present) and the
project's own fixtures and workloads: locks, semaphores, pipes, process trees, a static
binary, CPython threads and processes, a launcher, the sampler alone.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(SRC), "shared", "reference")
PY = "/usr/bin/python3"

# Fields whose values describe the build or the moment, not the measurement.
VOLATILE = {"poolprof_version"}
# What a report leaves in the run directory beside report.json, compared byte for byte.
RUNDIR_FILES = ["rss.csv", "stacks.folded", "stacks-offcpu.folded"]


def corpus(fixtures, port):
    """(name, argv, extra poolprof run options) for every program compared."""
    items = []
    ref = os.path.join(SHARED, "expected.json")
    if os.path.exists(ref):
        work = tempfile.mkdtemp(prefix="cmp-ref-")
        for name, w in json.load(open(ref))["workloads"].items():
            kind, file = w["run"]
            if kind == "c":
                exe = os.path.join(work, file)
                subprocess.run(["cc", "-O2", "-g", "-pthread", "-o", exe,
                                os.path.join(SHARED, "workloads", file + ".c")], check=True)
                items.append((name, [exe], []))
            else:
                items.append((name, [PY, os.path.join(SHARED, "workloads", file)], []))
    fx = lambda n: os.path.join(fixtures, n)
    wl = lambda n: os.path.join(SRC, "tests", "workloads", n)
    items += [
        ("fx_lock_hold", [fx("lock_hold")], []),
        ("fx_sem_handoff", [fx("sem_handoff")], []),
        ("fx_pipe_bytes", [fx("pipe_bytes"), "/tmp/cmp-reused.dat"], []),
        ("fx_spawn_tree", [fx("spawn_tree")], []),
        ("fx_static_burn", [fx("static_burn")], []),
        ("fx_burn_threads", [fx("burn_threads"), "3", "burner", "300", "100"], []),
        ("py_pyenv_launcher", ["python3", "-c", "sum(range(3000000))"], []),
        ("fx_net_turns", [fx("net_turns")], []),
        ("fx_wait_sites", [fx("wait_sites")], []),
        ("fx_lock_alone", [fx("lock_hold")], ["--no-preload"]),
        ("fx_lock_nosample", [fx("lock_hold")], ["--no-sample"]),
        ("py_launched", ["sh", "-c", f"exec {PY} -c 'sum(range(3000000))'"], []),
        ("py_chatty_pool", [PY, wl("chatty_pool.py")], []),
        ("py_primes_procs", [PY, wl("cpu_primes_procs.py"), "2"], []),
        ("py_io_threads", [PY, wl("io_fetch_threads.py"), "4"], []),
        ("demo_pipeline", [PY, os.path.join(SRC, "demo", "pipeline.py")], []),
    ]
    return items


def start_server():
    d = tempfile.mkdtemp(prefix="cmp-http-")
    port_file = os.path.join(d, "port")
    srv = subprocess.Popen([PY, os.path.join(SRC, "tests", "workloads", "slow_http.py"), port_file, "40"])
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return srv, open(port_file).read().strip()
        time.sleep(0.05)
    raise SystemExit("slow_http.py did not start")


def record(out, poolprof):
    poolprof = os.path.abspath(poolprof)
    fixtures = os.path.join(os.path.dirname(poolprof), "tests", "fixtures")
    os.makedirs(out, exist_ok=True)
    srv, port = start_server()
    env = dict(os.environ, REF_PORT=port)
    try:
        for name, argv, opts in corpus(fixtures, port):
            rundir = os.path.join(out, name)
            cmd = [poolprof, "run", "-o", rundir, "--force", "--json", rundir + ".json"] + opts + ["--"] + argv
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            print(f"{name}: exit {r.returncode}", file=sys.stderr)
    finally:
        srv.kill()


def rereport(out, poolprof, tag):
    bad = 0
    for name in sorted(os.listdir(out)):
        rundir = os.path.join(out, name)
        if not os.path.isdir(rundir):
            continue
        r = subprocess.run([os.path.abspath(poolprof), "report", "--format", "json", rundir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print(f"{name}: report failed: {r.stderr.strip()}")
            bad += 1
            continue
        with open(os.path.join(out, f"{name}.{tag}.json"), "w") as f:
            f.write(r.stdout)
        # The terminal summary, and the files a report leaves in the run directory, byte for byte.
        t = subprocess.run([os.path.abspath(poolprof), "report", rundir], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        with open(os.path.join(out, f"{name}.{tag}.terminal"), "w") as f:
            f.write(t.stdout)
        for extra in RUNDIR_FILES:
            src = os.path.join(rundir, extra)
            if os.path.exists(src):
                with open(src, "rb") as i, open(os.path.join(out, f"{name}.{tag}.{extra}"), "wb") as o:
                    o.write(i.read())
    return bad


def paths(node, prefix=""):
    """Every key path of a report, stages keyed by name, other arrays by position."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(prefix + "." + k)
            out |= paths(v, prefix + "." + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            key = v.get("name") if isinstance(v, dict) and prefix.endswith("stages") else i
            out |= paths(v, f"{prefix}[{key}]")
    return out


def verdicts(r):
    out = {}
    for s in [r.get("overall", {})] + r.get("stages", []):
        rec = s.get("recommendation", {})
        out[s.get("name")] = (s.get("class"), rec.get("model"))
    return out


def diff(a, b, exact):
    """Differences between two reports, one line each."""
    lines = []
    pa, pb = paths(a), paths(b)
    for p in sorted(pa - pb):
        lines.append(f"field only in the first: {p}")
    for p in sorted(pb - pa):
        lines.append(f"field only in the second: {p}")
    va, vb = verdicts(a), verdicts(b)
    for name in sorted(set(va) | set(vb), key=str):
        if va.get(name) != vb.get(name):
            lines.append(f"verdict of {name}: {va.get(name)} against {vb.get(name)}")
    if exact:
        def walk(x, y, p):
            if isinstance(x, dict) and isinstance(y, dict):
                for k in x.keys() & y.keys():
                    if k not in VOLATILE:
                        walk(x[k], y[k], p + "." + k)
            elif isinstance(x, list) and isinstance(y, list):
                if len(x) != len(y):
                    lines.append(f"{p}: {len(x)} items against {len(y)}")
                for i, (u, v) in enumerate(zip(x, y)):
                    walk(u, v, f"{p}[{i}]")
            elif x != y:
                lines.append(f"{p}: {json.dumps(x)[:120]} against {json.dumps(y)[:120]}")
        walk(a, b, "")
    return lines


def diffdir(out, ta, tb, exact):
    bad = 0
    for name in sorted(os.listdir(out)):
        if not os.path.isdir(os.path.join(out, name)):
            continue
        fa = os.path.join(out, name + (".json" if ta == "run" else f".{ta}.json"))
        fb = os.path.join(out, name + (".json" if tb == "run" else f".{tb}.json"))
        try:
            a, b = json.load(open(fa)), json.load(open(fb))
        except (OSError, ValueError) as e:
            print(f"{name}: cannot compare: {e}")
            bad += 1
            continue
        lines = diff(a, b, exact)
        if ta != "run" and tb != "run":
            for extra in ["terminal"] + RUNDIR_FILES:
                xa, xb = (os.path.join(out, f"{name}.{t}.{extra}") for t in (ta, tb))
                if os.path.exists(xa) != os.path.exists(xb):
                    lines.append(f"{extra}: written by one build only")
                elif os.path.exists(xa) and open(xa, "rb").read() != open(xb, "rb").read():
                    lines.append(f"{extra}: differs (diff {xa} {xb})")
        print(f"{'SAME' if not lines else 'DIFF'} {name}")
        for l in lines[:40]:
            print("    " + l)
        bad += bool(lines)
    print(f"compare: {bad} differed")
    return bad


def main(argv):
    if len(argv) >= 3 and argv[0] == "record":
        record(argv[1], argv[2])
        return 0
    if len(argv) >= 4 and argv[0] == "rereport":
        return 1 if rereport(argv[1], argv[2], argv[3]) else 0
    if len(argv) >= 3 and argv[0] == "diff":
        lines = diff(json.load(open(argv[1])), json.load(open(argv[2])), "--exact" in argv)
        print("\n".join(lines) if lines else "same")
        return 1 if lines else 0
    if len(argv) >= 4 and argv[0] == "diffdir":
        return 1 if diffdir(argv[1], argv[2], argv[3], "--exact" in argv) else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
