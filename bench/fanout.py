#!/usr/bin/env python3
"""fanout.py: poolprof's cost on process and thread fan-out (issue 27): wall ratios beside perf record and strace, run-directory size per process image, report time, and what poolprof says it dropped.

usage: bench/fanout.py [--poolprof build/poolprof] [--rounds 5] [--workloads a,b] [--configs k,k] [--quick]
                       [--raw FILE] [--seed N] [--python /usr/bin/python3] [--timeout 300]

Workloads, each generated afresh in a temporary directory per invocation, no network
(sizes: full / --quick):

  xargs    sh -c 'seq -f f%g 1 N | xargs -n 1 -P 2 md5sum' over N generated 16 KiB files of
           seeded random bytes (N = 1200 / 100): N short processes, each one fork and one exec
           of xargs, so about N process images under poolprof (a fork child that only
           execs makes no record of its own)
  make     make -s -j2 of a generated C project: N files of 4 small functions each and a main
           (N = 40 / 6), compiled with cc -O2 and linked; `make -s clean` before every run,
           untimed. Each compile is a cc driver, cc1 and as; the link adds collect2 and ld
  threads  build/bench/thread_churn N (bench/thread_churn.c; N = 5000 / 500): N threads, at most
           usable-CPUs alive at once, each 50 000 steps of an LCG; one process image
  pool     PYTHON bench/pool_maxtasks.py N (N = 200 / 20): multiprocessing.Pool(2,
           maxtasksperchild=1, start method fork) over N small CPU tasks at chunksize 1, so a
           freshly forked worker per task: about N short images

Configurations, all run in the same rounds (each round runs every configuration of a
workload once, in a freshly shuffled order, so all see the same machine noise):

  plain        the command, unprofiled
  default      poolprof run -o RUNDIR -- CMD       (shim, sampler and /proc monitor)
  no-sample    poolprof run --no-sample -o RUNDIR -- CMD   (shim and monitor)
  no-preload   poolprof run --no-preload -o RUNDIR -- CMD  (sampler and monitor)
  floor        LD_PRELOAD=build/bench/libempty_preload.so CMD  (what preloading any library costs)
  inert        LD_PRELOAD=build/libprof.so CMD, no run directory  (the shim loaded, not recording)
  record       LD_PRELOAD=build/bench/librecord_floor.so CMD  (each exec'd image claims, allocates,
               maps and populates a one-page record in a shared file, and records nothing else; a
               fork child that only execs has none, as under the shim)
  identity     the same, RECORD_FLOOR_IDENTITY=1: the page also holds the executable, the pid
               namespace and the RSS at the end, read from /proc (what a record must hold)
  ptrace       build/bench/ptrace_follow --no-clone CMD  (a tracer stopping every process at the
               sampler's ptrace events and resuming it at once: what following a tree costs)
  perf         perf record -g -F 100 -q -o FILE -- CMD   (with -e cpu-clock when the default
               event cannot record here; left out, with a note, when neither can)
  strace       strace -f -c -o FILE CMD   (the summary goes to a file, read once for the
               workload's execve and clone counts)
  plain-again  the command unprofiled a second time in the round: an A/A control, whose ratio to
               plain is this run's own noise at the workload (ideally 1.000)

Two wall times per run. The workload's own: bench/walltime, built beside poolprof, runs
innermost in every configuration (plain included) and times the command from its fork to
its exit. End to end: around the whole command (for poolprof: start, merge and report
included, what a user waits for). Ratio = median(config) / median(plain) of the same
invocation; with 3 rounds or more, a 90% bootstrap interval of it for the targets.

Targets (issue 27), on the workload's own wall ratio: poolprof default ≤ 1.25, --no-sample
≤ 1.15; and where perf record's own ratio is above 1.25, the default is held to within 1.1×
of perf's ratio instead (PASS if either holds: the "vs perf" column shows default / perf and
its check where it applies). Run directory ≤ 32 KB per process image on average, real
blocks, for the configurations that preload the shim (the xargs, make and pool workloads,
whose images are short; threads has one image and no size target).

From every poolprof run, before the run directory is removed: its size, as real blocks
(st_blocks, what `du -sk` counts) and as apparent bytes (st_size, `du -sk --apparent-size`),
every file and directory in it, whole and proc/ alone; the number of process images, that
is of records in proc/ (one per image: an exec starts one, and a fork does when the child
records anything before it execs or ends; walltime's own images included; count_records: regions of the arenas proc/*.arena, and files proc/*.rec); per image = size / images (under --no-preload, which writes no
records, the workload's image count from the runs that preload). The time of `poolprof
report RUNDIR` (a second merge of the kept directory, report files rewritten, terminal
summary discarded), and the run's tail: its end-to-end wall minus the workload's own (start,
final merge and report). What poolprof says it dropped: report.json's measurement.errors,
its notes that say "beyond", "not recorded" or "dropped", the sampler's perf_lost and
switch_lost, processes without a shim record (measurement.no_shim_pids), and lines of the
run's terminal output (stderr) with those words or "recording problems" (the terminal
summary counts measurement.errors, it does not list them); messages are grouped with their
numbers masked, one example and a count shown.

Where per-image time goes: the extra workload wall per image of each poolprof
configuration over plain (no-sample: shim init, record setup and /proc monitor;
no-preload: sampler and monitor; default: all of it), beside the sampler's own CPU
(sampler.rec last H line, self_cpu_ns) and the monitor's (monitor.rec last C line) per
image, and the report's time per image; for the threads workload (one image of the
workload's own) the same per thread below the table. The shim keeps no timing of its own start, so its
init and record setup are not separable from outside; the no-sample column is their
upper bound with the monitor's scan.

The Markdown goes to stdout, progress to stderr. The machine is shared and noisy: compare
ratios, not times.
"""
import argparse, json, os, random, re, shutil, struct, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sampler_overhead import (find_tools, fmt, last_h_line, med, monitor_cpu_ns, ratio_cell,  # noqa: E402
                              select_configs, timed, timed_round, verdict)

HERE = os.path.dirname(os.path.abspath(__file__))

# key, label, kind, poolprof args, wall-ratio target
CONFIGS = [
    ("plain", "plain", "plain", None, None),
    ("default", "poolprof", "poolprof", [], 1.25),
    ("no-sample", "--no-sample", "poolprof", ["--no-sample"], 1.15),
    ("no-preload", "--no-preload", "poolprof", ["--no-preload"], None),
    # The floor under the shim: LD_PRELOAD of an empty library, and of the shim with no run directory
    # (it loads, resolves and returns: what every image pays before recording anything).
    ("floor", "LD_PRELOAD floor (empty library)", "preload", "libempty_preload.so", None),
    ("inert", "shim loaded, not recording", "preload", "libprof.so", None),
    # The floor under recording: a library that only gives each image a durable one-page record
    # in a shared file (claimed by an atomic add, allocated, mapped, populated), as the shim's
    # arenas do, and records nothing else.
    ("record", "record floor (a page per exec'd image)", "preload", "librecord_floor.so", None),
    # The same page holding what a record must for a report to use it: the executable, the pid
    # namespace and the RSS at the end, each read from /proc as the shim must.
    ("identity", "record + identity floor (exe, pid ns, status)", "preload", "librecord_floor.so", None),
    # The floor under the sampler: a tracer that follows every process by the ptrace events the
    # sampler asks for (fork, vfork, exec, exit; clones are followed by switch records) and does
    # nothing else.
    ("ptrace", "ptrace floor (events only)", "ptrace", None, None),
    ("perf", "perf record -g -F 100", "perf", None, None),
    ("strace", "strace -f -c", "strace", None, None),
    ("plain-again", "plain again", "plain", None, None),
]
LABEL = {c[0]: c[1] for c in CONFIGS}
PERF_FACTOR = 1.10          # default within 1.1x of perf record's ratio, where perf's is above the target
SIZE_KB_PER_IMAGE = 32.0    # run directory per short process image, real blocks
SIZE_TARGETED = {"xargs", "make", "pool"}
DROP_WORDS = re.compile(r"beyond|not recorded|dropped", re.I)
TERM_WORDS = re.compile(r"beyond|not recorded|dropped|recording problem", re.I)  # the terminal counts errors

# name -> (full size, quick size, what it is: Markdown, {n} the size)
WORKLOADS = {
    "xargs": (1200, 100, "`seq -f f%g 1 {n} \\| xargs -n 1 -P 2 md5sum` over {n} files of 16 KiB"),
    "make": (40, 6, "`make -s -j2` of {n} generated C files and a main"),
    "threads": (5000, 500, "`thread_churn {n}`: {n} short threads, ≤ usable CPUs alive"),
    "pool": (200, 20, "`Pool(2, maxtasksperchild=1)` over {n} tasks, chunksize 1"),
}


def gen_files(d, n):
    """n files f1..fn of 16 KiB of seeded random bytes."""
    os.makedirs(d)
    rng = random.Random(27)
    for i in range(1, n + 1):
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(rng.randbytes(16384))


def gen_project(d, n):
    """A C project of n files with 4 small functions each, a main calling them all, and a Makefile."""
    os.makedirs(d)
    protos, calls = [], []
    for i in range(n):
        with open(os.path.join(d, f"m{i:02d}.c"), "w") as f:
            f.write(f"/* m{i:02d}.c: generated by bench/fanout.py. */\n#include <stdint.h>\n")
            for j in range(4):
                f.write(f"\nuint64_t m{i:02d}_f{j}(uint64_t x)\n{{\n    uint64_t acc = {i * 7 + j};\n"
                        "    for (int k = 0; k < 64; k++) {\n"
                        "        acc = acc * 6364136223846793005ULL + (x ^ (uint64_t)k);\n"
                        "        if (acc & 1)\n            acc ^= acc >> 13;\n        else\n            acc += acc << 7;\n"
                        "    }\n    return acc;\n}\n")
                protos.append(f"uint64_t m{i:02d}_f{j}(uint64_t);\n")
                calls.append(f"    s += m{i:02d}_f{j}(s);\n")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("/* main.c: generated by bench/fanout.py. */\n#include <stdint.h>\n#include <stdio.h>\n")
        f.write("".join(protos))
        f.write("int main(void)\n{\n    uint64_t s = 0;\n" + "".join(calls) +
                '    printf("%016llx\\n", (unsigned long long)s);\n    return 0;\n}\n')
    objs = " ".join([f"m{i:02d}.o" for i in range(n)] + ["main.o"])
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write(f"CC = cc\nCFLAGS = -O2\nOBJS = {objs}\n\napp: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n"
                "%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\nclean:\n\trm -f app $(OBJS)\n\n.PHONY: clean\n")


ARENA_MAGIC = 0x414e4552414c4f50  # "POLARENA", libprof/format/shm.h


def count_records(procdir):
    """Process records in a run's proc/: files *.rec, and the regions of arenas *.arena (struct
    prof_shm_arena: a live one's claimed regions, a packed one's regions that hold a record)."""
    n = 0
    for f in os.listdir(procdir):
        if f.startswith("."):
            continue
        if f.endswith(".rec"):
            n += 1
        elif f.endswith(".arena"):
            with open(os.path.join(procdir, f), "rb") as fh:
                head = fh.read(64)
                if len(head) < 64:
                    continue
                magic, _ver, _page, stride, cap, nxt, nreg, _hint, _closed = struct.unpack("<QIIQQQQQQ", head)
                if magic != ARENA_MAGIC:
                    continue
                if stride:
                    n += min(nxt, cap)
                else:
                    table = fh.read(16 * nreg)
                    n += sum(1 for i in range(len(table) // 16) if struct.unpack_from("<QQ", table, 16 * i)[1])
    return n


def dir_size(path):
    """(real bytes, apparent bytes) of every file and directory under path, hard links once, as du counts."""
    real = apparent = 0
    seen = set()
    for root, dirs, files in os.walk(path):
        for name in [None] + dirs + files:
            p = root if name is None else os.path.join(root, name)
            if name is not None and name in dirs:
                continue  # counted as the root of its own walk step
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            real += st.st_blocks * 512
            apparent += st.st_size
    return real, apparent


def dropped(rundir, stderr_path):
    """What poolprof said it dropped or could not record in this run."""
    out = {"errors": [], "notes": [], "perf_lost": None, "switch_lost": None, "no_shim": None, "terminal": []}
    try:
        m = json.load(open(os.path.join(rundir, "report.json"))).get("measurement") or {}
        out["errors"] = [str(e) for e in m.get("errors") or []]
        out["notes"] = [str(n) for n in m.get("notes") or [] if DROP_WORDS.search(str(n))]
        s = m.get("sampler") or {}
        out["perf_lost"] = s.get("perf_lost")
        out["switch_lost"] = s.get("switch_lost")
        out["no_shim"] = len(m.get("no_shim_pids") or [])
    except (OSError, ValueError, AttributeError):
        out["errors"] = ["report.json unreadable"]
    try:
        with open(stderr_path, errors="replace") as f:
            out["terminal"] = [ln.strip() for ln in f if TERM_WORDS.search(ln)]
    except OSError:
        pass
    return out


def strace_counts(path):
    """Successful execve calls and clone-family calls (threads included) from a strace -c summary."""
    execs = clones = None
    try:
        for line in open(path, errors="replace"):
            f = line.split()
            if len(f) < 5 or not f[-1].isidentifier():
                continue
            try:
                calls = int(f[3])
                errors = int(f[4]) if len(f) == 6 else 0
            except ValueError:
                continue
            if f[-1] == "execve":
                execs = calls - errors
            elif f[-1] in ("clone", "clone3", "fork", "vfork"):
                clones = (clones or 0) + calls - errors
    except OSError:
        pass
    return execs, clones


def perf_probe(work):
    """The perf record arguments that record here (-g -F 100, the default event or cpu-clock) and the
    event perf used, or (None, why not)."""
    if not shutil.which("perf"):
        return None, "perf is not installed"
    data = os.path.join(work, "probe.data")
    why = ""
    for extra in ([], ["-e", "cpu-clock"]):
        args = ["perf", "record", *extra, "-g", "-F", "100", "-q", "-o", data, "--"]
        try:
            p = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            why = str(e)
            continue
        if p.returncode == 0 and os.path.getsize(data) > 0:
            ev = subprocess.run(["perf", "evlist", "-i", data], capture_output=True, text=True).stdout.split()
            os.unlink(data)
            return args, (ev[0] if ev else "?")
        why = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
    return None, f"perf record cannot record here ({why})"


def fs_type(path):
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poolprof", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 with --quick)")
    ap.add_argument("--workloads", default="", help="comma-separated: " + ", ".join(WORKLOADS) + " (default: all)")
    ap.add_argument("--configs", default="", help="comma-separated configuration keys to run besides plain: "
                    + ", ".join(k for k in LABEL if k != "plain") + " (default: all)")
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test of the benchmark "
                    "(not for bench/RESULTS.md)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the per-round order shuffle")
    ap.add_argument("--python", default="/usr/bin/python3", help="the interpreter of the pool workload")
    ap.add_argument("--raw", default="", help="also write every run's figures (per configuration, in round "
                    "order) to this JSON file")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per single run before it is killed")
    a = ap.parse_args()
    rounds = a.rounds if a.rounds is not None else (2 if a.quick else 5)
    if rounds < 1:
        ap.error("--rounds wants at least 1")
    found = find_tools("fanout", a.poolprof, "walltime", "thread_churn", "ptrace_follow")
    if not found:
        return 2
    poolprof, walltime, churn, follow = found
    names = [n for n in a.workloads.split(",") if n] or list(WORKLOADS)
    for n in names:
        if n not in WORKLOADS:
            print(f"fanout: unknown workload '{n}' (known: {', '.join(WORKLOADS)})", file=sys.stderr)
            return 2
    configs = select_configs("fanout", list(CONFIGS), a.configs, LABEL)
    if configs is None:
        return 2
    notes = []
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="poolprof-fanout.")
    t_start = time.time()
    results = {}   # name -> key -> lists of figures per run
    info = {}      # name -> what the workload is
    try:
        perf_args = None
        if any(c[0] == "perf" for c in configs):
            perf_args, perf_event = perf_probe(work)
            if perf_args is None:
                notes.append(f"perf record left out: {perf_event}")
                configs = [c for c in configs if c[0] != "perf"]
            else:
                notes.append(f"perf record: `{' '.join(perf_args[:-3])} -o FILE -- CMD`, event {perf_event}; its end "
                             "to end includes its own post-processing (build ids)")
        if any(c[0] == "strace" for c in configs) and not shutil.which("strace"):
            notes.append("strace left out: not installed")
            configs = [c for c in configs if c[0] != "strace"]
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        specs = {}
        for name in names:
            size = WORKLOADS[name][1 if a.quick else 0]
            print(f"{name}: generating (N = {size})", file=sys.stderr, flush=True)
            before = None
            if name == "xargs":
                cwd = os.path.join(work, "files")
                gen_files(cwd, size)
                cmd = ["sh", "-c", f"seq -f f%g 1 {size} | xargs -n 1 -P 2 md5sum"]
            elif name == "make":
                cwd = os.path.join(work, "proj")
                gen_project(cwd, size)
                cmd = ["make", "-s", "-j2"]
                before = ["make", "-s", "clean"]
            elif name == "threads":
                cwd = work
                cmd = [churn, str(size)]
            else:
                cwd = work
                cmd = [a.python, os.path.join(HERE, "pool_maxtasks.py"), str(size)]
            specs[name] = (cmd, cwd, before)
            info[name] = {"size": size, "what": WORKLOADS[name][2].format(n=size)}
            results[name] = {c[0]: {"wall": [], "twall": [], "fail": 0, "real": [], "apparent": [], "proc_real": [],
                                    "images": [], "report": [], "report_fail": 0, "h": [], "mon": [], "drop": [],
                                    "perf_bytes": [], "strace": []} for c in configs}
        seq = 0
        twfile = os.path.join(work, "walltime")
        for name in names:
            cmd, cwd, before = specs[name]
            wcmd = [walltime, twfile, *cmd]
            # One warm-up of the plain command (page cache, compiler, pyc files), not counted.
            if before:
                subprocess.run(before, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            timed(cmd, env, cwd, a.timeout)
            for rnd in range(rounds):
                order = list(configs)
                rng.shuffle(order)
                for key, _label, kind, pp_args, _target in order:
                    if before:
                        subprocess.run(before, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    seq += 1
                    rundir = perfdata = stracefile = errfile = None
                    renv = env
                    if kind == "plain":
                        argv = wcmd
                    elif kind == "preload":
                        argv = wcmd
                        lib = pp_args if pp_args.startswith("libprof") else os.path.join("bench", pp_args)
                        renv = dict(env, LD_PRELOAD=os.path.join(os.path.dirname(poolprof), lib))
                        if key in ("record", "identity"):
                            floorfile = os.path.join(work, f"floor-{seq}")
                            with open(floorfile, "wb") as fh:
                                fh.write(bytes(4096))
                            renv["RECORD_FLOOR_FILE"] = floorfile
                            if key == "identity":
                                renv["RECORD_FLOOR_IDENTITY"] = "1"
                    elif kind == "ptrace":
                        argv = [follow, "--no-clone", *wcmd]
                    elif kind == "strace":
                        stracefile = os.path.join(work, f"strace-{seq}")
                        argv = ["strace", "-f", "-c", "-o", stracefile, *wcmd]
                    elif kind == "perf":
                        perfdata = os.path.join(work, f"perf-{seq}.data")
                        argv = [*perf_args, *wcmd]
                        argv[argv.index("-o") + 1] = perfdata
                    else:
                        rundir = os.path.join(work, f"run-{seq}")
                        errfile = os.path.join(work, f"stderr-{seq}")
                        argv = [poolprof, "run", *pp_args, "-o", rundir, "--", *wcmd]
                    r = results[name][key]
                    timed_round(r, f"{name} {key} round {rnd + 1}", argv, renv, cwd, a.timeout, twfile, errfile)
                    if rundir:
                        real, apparent = dir_size(rundir)
                        r["real"].append(real)
                        r["apparent"].append(apparent)
                        procdir = os.path.join(rundir, "proc")
                        r["proc_real"].append(dir_size(procdir)[0] if os.path.isdir(procdir) else 0)
                        r["images"].append(count_records(procdir) if os.path.isdir(procdir) else 0)
                        r["h"].append(last_h_line(os.path.join(rundir, "sampler.rec")))
                        r["mon"].append(monitor_cpu_ns(os.path.join(rundir, "monitor.rec")))
                        r["drop"].append(dropped(rundir, errfile))
                        t = time.perf_counter()
                        p = subprocess.run([poolprof, "report", rundir], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, timeout=a.timeout)
                        if p.returncode == 0:
                            r["report"].append(time.perf_counter() - t)
                        else:
                            r["report_fail"] += 1
                        shutil.rmtree(rundir, ignore_errors=True)
                        os.unlink(errfile)
                    if perfdata:
                        try:
                            r["perf_bytes"].append(os.path.getsize(perfdata))
                            os.unlink(perfdata)
                        except OSError:
                            pass
                    if key in ("record", "identity"):
                        os.unlink(floorfile)
                    if stracefile:
                        r["strace"].append(strace_counts(stracefile))
                        try:
                            os.unlink(stracefile)
                        except OSError:
                            pass
                print(f"{name}: round {rnd + 1}/{rounds} done ({time.time() - t_start:.0f} s)", file=sys.stderr,
                      flush=True)
        fstype = fs_type(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if a.raw:
        with open(a.raw, "w") as f:
            json.dump({"rounds": rounds, "quick": a.quick, "workloads": info, "results": results}, f)
    print_tables(names, info, results, rounds, a.quick, notes, fstype, time.time() - t_start)
    return 0


def images_of(results, n):
    """The workload's process images: the median count of proc/*.rec over the runs that preload the shim."""
    v = [i for k in ("default", "no-sample") if k in results[n] for i in results[n][k]["images"]]
    return med(v)


def group(msgs):
    """Messages grouped by their text with the numbers masked: [(count, example)], most frequent first."""
    g = {}
    for m in msgs:
        k = re.sub(r"\d+", "N", m)
        g.setdefault(k, [0, m])[0] += 1
    return sorted(g.values(), key=lambda x: -x[0])


def print_tables(names, info, results, rounds, quick, notes, fstype, elapsed):
    keys = [c[0] for c in CONFIGS if any(c[0] in results[n] for n in names)]
    target = {c[0]: c[4] for c in CONFIGS}
    worst = {}  # target label -> (value, where, ok, interval or None)

    def track(label, value, where, ok, iv=None):
        cur = worst.get(label)
        if cur is None or (not ok and cur[2]) or (ok == cur[2] and value > cur[0]):
            worst[label] = (value, where, ok, iv)

    def ratio(n, k, field):
        base = med(results[n]["plain"][field]) if "plain" in results[n] else None
        m = med(results[n][k][field]) if k in results[n] else None
        return m / base if m is not None and base else None

    print(f"Fan-out cost, `bench/fanout.py{' --quick' if quick else ''} --rounds {rounds}` "
          f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {elapsed / 60:.1f} min): median over {rounds} "
          f"interleaved rounds, ratio = median(config) / median(plain). Run directories on {fstype} (stat -f).")
    for note in notes:
        print(f"\n- {note}")
    print()
    print("| workload | what | process images (records in proc/, walltime's 2 included) | strace: execve / clone calls "
          "| plain s |")
    print("|---|---|---|---|---|")
    for n in names:
        st = results[n].get("strace", {}).get("strace") or []
        sts = (f"{med([s[0] for s in st if s[0] is not None]) or 0:.0f} / "
               f"{med([s[1] for s in st if s[1] is not None]) or 0:.0f}") if st else "–"
        print(f"| {n} | {info[n]['what']} | {fmt(images_of(results, n), '.0f')} | {sts} "
              f"| {fmt(med(results[n]['plain']['twall']), '.3f')} |")
    print()

    def ratio_table(field, targets):
        cols = [k for k in keys if k != "plain"]
        vs_perf = targets and "default" in keys and "perf" in keys
        print("| workload | plain s | " + " | ".join(LABEL[k] for k in cols) +
              (" | vs perf (poolprof ÷ perf) |" if vs_perf else " |"))
        print("|---|---|" + "---|" * (len(cols) + vs_perf))
        col_ratios = {k: [] for k in cols}
        for n in names:
            base = med(results[n]["plain"][field])
            cells = [fmt(base, ".3f")]
            for k in cols:
                r = results[n].get(k)
                if r is None:
                    cells.append("n/a")
                    continue
                q = ratio(n, k, field)
                if q is None:
                    cells.append("failed")
                    continue
                col_ratios[k].append(q)
                cells.append(ratio_cell(q, r[field], results[n]["plain"][field], r["fail"], LABEL[k],
                                        target[k] if targets else None, track, n))
            if vs_perf:
                qd, qp = ratio(n, "default", field), ratio(n, "perf", field)
                if qd is None or qp is None:
                    cells.append("–")
                elif qp > target["default"]:
                    ok = qd <= PERF_FACTOR * qp
                    track(f"poolprof ≤ {PERF_FACTOR:.1f}× perf's ratio (where perf's > {target['default']:.2f})",
                          qd / qp, n, ok)
                    cells.append(f"{qd / qp:.3f} {verdict(ok)}; target met: {verdict(ok or qd <= target['default'])}")
                else:
                    cells.append(f"{qd / qp:.3f} (perf ≤ {target['default']:.2f}: the absolute target applies)")
            print(f"| {n} | " + " | ".join(cells) + " |")
        print("| median | | " + " | ".join(
            fmt(med(col_ratios[k]), ".3f") +
            (f" {verdict(med(col_ratios[k]) <= target[k])}" if targets and target[k] and col_ratios[k] else "")
            for k in cols) + (" | |" if vs_perf else " |"))
        print()

    print("The workload's own wall time (bench/walltime innermost in every configuration):")
    print()
    ratio_table("twall", True)
    print(f"Targets: poolprof ≤ {target['default']:.2f}, --no-sample ≤ {target['no-sample']:.2f}; where perf "
          f"record's own ratio is above {target['default']:.2f}, poolprof within {PERF_FACTOR:.1f}× of it is enough "
          "(strace and --no-preload: reference points, no target).")
    print()
    print("End to end (the whole command: for poolprof, start, merge and report included):")
    print()
    ratio_table("wall", False)

    pp = [k for k in ("default", "no-sample", "no-preload") if k in keys]
    if pp:
        print(f"Run directory, as left by `poolprof run` (median over rounds; KB = 1024 bytes; real = allocated "
              f"blocks as du -sk, apparent = file sizes as du -sk --apparent-size; per image = size / the workload's "
              f"process images; target ≤ {SIZE_KB_PER_IMAGE:.0f} KB real per short image), the run's tail (end to "
              "end minus the workload's own wall) and `poolprof report RUNDIR` on it:")
        print()
        print("| workload | config | images | run dir KB real / apparent | proc/ KB real | per image KB real "
              "| per image KB apparent | run's tail s | report s | report ms / image |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in names:
            imgs = images_of(results, n)
            for k in pp:
                r = results[n].get(k)
                if r is None or not r["real"]:
                    continue
                real, app, preal = med(r["real"]) / 1024, med(r["apparent"]) / 1024, med(r["proc_real"]) / 1024
                per = per_a = None
                pcell = pacell = "–"
                if imgs:
                    per, per_a = real / imgs, app / imgs
                    pcell, pacell = f"{per:.1f}", f"{per_a:.1f}"
                    if n in SIZE_TARGETED and k != "no-preload":
                        ok = per <= SIZE_KB_PER_IMAGE
                        track(f"run directory ≤ {SIZE_KB_PER_IMAGE:.0f} KB per short image", per, f"{n}, {LABEL[k]}",
                              ok)
                        pcell += f" {verdict(ok)}"
                tails = [w - t for w, t in zip(r["wall"], r["twall"])]
                rep = med(r["report"])
                rfail = f" ({r['report_fail']} failed)" if r["report_fail"] else ""
                own = f"{med(r['images']):.0f}" if k != "no-preload" else f"0 (of {fmt(imgs, '.0f')})"
                print(f"| {n} | {LABEL[k]} | {own} | {real:.0f} / {app:.0f} | {preal:.0f} | {pcell} | {pacell} "
                      f"| {fmt(med(tails), '.3f')} | {fmt(rep, '.3f')}{rfail} "
                      f"| {fmt(rep * 1000 / imgs if rep is not None and imgs else None, '.2f')} |")
            if "perf" in results[n] and results[n]["perf"]["perf_bytes"]:
                b = med(results[n]["perf"]["perf_bytes"]) / 1024
                print(f"| {n} | perf.data (reference) | | – / {b:.0f} | | | "
                      f"{fmt(b / imgs if imgs else None, '.1f')} | | | |")
        print()

        print("What poolprof says it dropped or could not record (every run of the configuration: report.json "
              "measurement.errors and notes saying beyond / not recorded / dropped, grouped with numbers masked; "
              "the sampler's perf_lost and switch_lost, summed over runs; processes without a shim record, median; "
              "terminal lines with those words or 'recording problems'):")
        print()
        print("| workload | config | runs | errors and notes | perf lost | switch lost | no shim record | terminal |")
        print("|---|---|---|---|---|---|---|---|")
        for n in names:
            for k in pp:
                r = results[n].get(k)
                if r is None or not r["drop"]:
                    continue
                ds = r["drop"]
                msgs = group([m for d in ds for m in d["errors"] + d["notes"]])
                mcell = "; ".join(f"{c}× `{ex}`" for c, ex in msgs[:3]) + \
                    (f"; +{len(msgs) - 3} other kinds" if len(msgs) > 3 else "") if msgs else "none"
                term = group([m for d in ds for m in d["terminal"]])
                tcell = "; ".join(f"{c}× `{ex}`" for c, ex in term[:2]) + \
                    (f"; +{len(term) - 2} other kinds" if len(term) > 2 else "") if term else "none"
                sm = lambda f: (f"{sum(d[f] for d in ds if d[f] is not None):.0f}"
                                if any(d[f] is not None for d in ds) else "–")
                ns = med([d["no_shim"] for d in ds if d["no_shim"] is not None])
                ncell = "– (no shim by design)" if k == "no-preload" else fmt(ns, ".0f")
                print(f"| {n} | {LABEL[k]} | {len(ds)} | {mcell} | {sm('perf_lost')} | {sm('switch_lost')} "
                      f"| {ncell} | {tcell} |")
        print()

        print("Where per-image time goes (ms per process image, medians): the workload's extra wall over plain in "
              "each poolprof configuration (no-sample: shim init, record setup, /proc monitor; no-preload: sampler, "
              "monitor), the sampler's and the monitor's own CPU in the default runs, the report's time:")
        print()
        print("| workload | images | poolprof extra | --no-sample extra | --no-preload extra | sampler CPU "
              "| monitor CPU | report |")
        print("|---|---|---|---|---|---|---|---|")
        for n in names:
            imgs = images_of(results, n)
            if not imgs:
                continue
            base = med(results[n]["plain"]["twall"])
            cells = []
            for k in ("default", "no-sample", "no-preload"):
                m = med(results[n][k]["twall"]) if k in results[n] else None
                cells.append(fmt((m - base) * 1000 / imgs if m is not None and base else None, ".3f"))
            d = results[n].get("default")
            scpu = med([h["self_cpu_ns"] for h in d["h"] if h and h.get("self_cpu_ns")]) if d else None
            mcpu = med([c for c in d["mon"] if c]) if d else None
            rep = med(d["report"]) if d else None
            cells += [fmt(scpu / 1e6 / imgs if scpu else None, ".3f"), fmt(mcpu / 1e6 / imgs if mcpu else None, ".3f"),
                      fmt(rep * 1000 / imgs if rep is not None else None, ".3f")]
            print(f"| {n} | {imgs:.0f} | " + " | ".join(cells) + " |")
        print()
        if "threads" in names:
            n, base = "threads", med(results["threads"]["plain"]["twall"])
            per = []
            for k in ("default", "no-sample", "no-preload"):
                m = med(results[n][k]["twall"]) if k in results[n] else None
                if m is not None and base:
                    per.append(f"{LABEL[k]} {(m - base) * 1e6 / info[n]['size']:.1f} µs")
            if per:
                print(f"Per thread of the threads workload ({info[n]['size']} threads), extra wall over plain: "
                      + ", ".join(per) + ".")
                print()

    print("Worst case per target:")
    print()
    print("| target | worst | 90% interval | where | result |")
    print("|---|---|---|---|---|")
    for label, (v, where, ok, iv) in worst.items():
        ivs = f"{iv[0]:.3f}–{iv[1]:.3f}" if iv else "–"
        print(f"| {label} | {v:.3f} | {ivs} | {where} | {verdict(ok)} |" if "KB" not in label
              else f"| {label} | {v:.1f} KB | – | {where} | {verdict(ok)} |")
    print()
    print("90% interval: bootstrap of the ratio of medians, each configuration's and plain's runs resampled with "
          "replacement (2000 draws; 3 rounds or more). `plain again` is the unprofiled command run a second time in "
          "every round: its ratio is what this run's noise alone gives.")


if __name__ == "__main__":
    sys.exit(main())
