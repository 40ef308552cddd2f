#!/usr/bin/env python3
"""check_layout.py: the tree keeps the shape docs/ARCHITECTURE.md draws; prints each breach, exits 1 if any.

usage: check_layout.py [SRC]   (SRC: the checkout, default this script's parent)

- No file in libprof/ or tools/ over 1000 lines (generated code and tests aside).
- Every C file opens with one sentence saying what it is for: "/* name.c: ... */".
- No function over 150 lines unless the comment above it says why it is one function
  (the words "one function").
- No observer (libprof/shim, sampler, monitor) and no format/ file includes core/.
- In libprof/core, each pipeline step calls only its own functions and those of the data
  modules (run.c, samples.c, fit.c, stats.c, check.c, check_rules.c); pipeline.c alone calls the steps.
"""
import os
import re
import sys

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
MAX_LINES = 1000
MAX_FUNC = 150
STEPS = {
    "read": ["read.c", "read_run.c", "read_shim.c", "trim_shim.c", "read_monitor.c", "read_sampler.c", "read_sweep.c", "read_counters.c"],
    "merge": ["merge.c", "merge_sampler.c", "merge_counters.c"],
    "stages": ["stages.c", "stage_counters.c"],
    "advise": ["advise.c", "predict.c", "advise_run.c", "verdicts.c", "confidence.c", "evidence.c", "membound.c"],
    "report": ["report.c", "report_counters.c"],
}
DATA = ["run.c", "samples.c", "fit.c", "stats.c", "check.c", "check_rules.c"]
DRIVER = ["pipeline.c"]

problems = []


def sources(*dirs):
    for d in dirs:
        for root, _, files in os.walk(os.path.join(SRC, d)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.join(root, f)


def rel(p):
    return os.path.relpath(p, SRC)


def functions(text):
    """(name, first line, length, comment above) of every function defined at the top level."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i] == "{":
            head = i - 1
            while head > 0 and "(" not in lines[head]:
                head -= 1
            m = re.search(r"(\w+)\s*\(", lines[head])
            start = head
            while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith(("}", "#", "/*", " *", "*/", "//")) \
                    and not lines[start - 1].rstrip().endswith(("*/", ";")):
                start -= 1
            j = i + 1
            while j < len(lines) and lines[j] != "}":
                j += 1
            k = start - 1
            comment = []
            if k >= 0 and lines[k].rstrip().endswith("*/"):
                while k >= 0:
                    comment.insert(0, lines[k])
                    if lines[k].lstrip().startswith("/*"):
                        break
                    k -= 1
            out.append((m.group(1) if m else "?", head + 1, j - head + 1, "\n".join(comment)))
            i = j
        i += 1
    return out


def calls(text):
    return set(re.findall(r"\b(prof_\w+)\s*\(", text))


def definitions(text):
    return set(re.findall(r"^(?:[a-z].*?[\s*])?(prof_\w+)\s*\([^;]*$", text, re.M))


def main():
    for p in sources("libprof", "tools", "reports"):
        text = open(p, errors="replace").read()
        n = text.count("\n")
        if n > MAX_LINES:
            problems.append(f"{rel(p)}: {n} lines (at most {MAX_LINES})")
        base = os.path.basename(p)
        first = text.split("\n", 1)[0]
        if not re.match(r"/\* " + re.escape(base) + r": \S", first):
            problems.append(f"{rel(p)}: does not open with '/* {base}: what it is for */'")
        if p.endswith(".c"):
            for name, line, length, comment in functions(text):
                if length > MAX_FUNC and "one function" not in comment.lower():
                    problems.append(f"{rel(p)}:{line}: {name}() is {length} lines, and its comment does not say why "
                                    f"it is one function")
        top = rel(p).split(os.sep)
        if top[0] == "libprof" and len(top) > 2 and top[1] in ("shim", "sampler", "monitor", "format"):
            for inc in re.findall(r'#include\s+"([^"]+)"', text):
                # "core/x.h" from libprof's root, or "../core/x.h" from beside the file
                here = os.path.normpath(os.path.join(os.path.dirname(p), inc))
                if inc.startswith("core/") or here.startswith(os.path.join(SRC, "libprof", "core") + os.sep):
                    problems.append(f"{rel(p)}: includes {inc}: an observer or a format never includes core/")
    core = os.path.join(SRC, "libprof", "core")
    defined = {}
    for f in os.listdir(core):
        if f.endswith(".c"):
            for d in definitions(open(os.path.join(core, f)).read()):
                defined[d] = f
    step_of = {f: s for s, fs in STEPS.items() for f in fs}
    for f in sorted(os.listdir(core)):
        if not f.endswith(".c"):
            continue
        if f not in step_of and f not in DATA + DRIVER:
            problems.append(f"libprof/core/{f}: neither a pipeline step, a data module nor the driver")
            continue
        if f in step_of:
            for c in sorted(calls(open(os.path.join(core, f)).read())):
                g = defined.get(c)
                if g and g not in DATA and step_of.get(g) != step_of[f]:
                    problems.append(f"libprof/core/{f}: the {step_of[f]} step calls {c}() of the "
                                    f"{step_of.get(g, g)} step ({g})")
    for p in problems:
        print(p)
    print(f"layout: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
