#!/usr/bin/env python3
"""speedscope_dom.py: checks a poolprof speedscope file against the run it came from and against what
speedscope itself showed of it (the DOM headless Chromium dumped after loading the file into speedscope's app).

usage: speedscope_dom.py file   PROFILE RUNDIR SCHEMA   the file: schema, units, names, one profile per sampled
                                                        thread and kind, weights equal to sampler.rec's
       speedscope_dom.py loader PROFILE OUT.js          the script speedscope's own CLI writes (its
                                                        #localProfilePath= loads it from disk, no network)
       speedscope_dom.py dom    PROFILE DOM.html        the profile list and the sandwich table speedscope drew
       speedscope_dom.py frames PROFILE                 the active profile's frame names, root first, for grep
Prints one line per finding and "ok" when all hold.
"""
import base64
import collections
import decimal
import html.parser
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from samprec import Run  # noqa: E402  (sampler.rec read apart from poolprof's own reader)

OFF = " (off-CPU)"


def js_fixed2(x):
    """Number.prototype.toFixed(2): the exact binary value, ties away from zero."""
    return str(decimal.Decimal(x).quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP))


def speedscope_time(ns):
    """speedscope's TimeFormatter for unit nanoseconds (multiplier 1e-9), the same float steps."""
    n = ns * 1e-9
    if n / 60 >= 1:
        a = int(n // 60)
        return f"{a}:{int(n - a * 60):02d}"
    if n / 1 >= 1:
        return js_fixed2(n) + "s"
    if n / .001 >= 1:
        return js_fixed2(n / .001) + "ms"
    if n / 1e-6 >= 1:
        return js_fixed2(n / 1e-6) + "\u00b5s"
    return js_fixed2(n / 1e-9) + "ns"


def check_file(path, rundir, schema_path):
    bad = []
    d = json.load(open(path))
    try:
        import jsonschema
        schema = json.load(open(schema_path))
        jsonschema.validate(d, schema)
    except ImportError:
        bad.append("python3-jsonschema missing (scripts/setup.sh installs it)")
    except jsonschema.ValidationError as e:
        bad.append(f"schema: {e.message} at {list(e.absolute_path)}")
    if not re.match(r"^poolprof \d+\.\d+\.\d+", d.get("exporter", "")):
        bad.append(f"exporter {d.get('exporter')!r}")
    nframes = len(d["shared"]["frames"])
    keys = [json.dumps(f, sort_keys=True) for f in d["shared"]["frames"]]
    if len(set(keys)) != len(keys):
        bad.append("a frame twice in the shared table")
    S = Run(rundir)
    want = {}
    for tid, st in S.ns.items():
        on = st.get("running", 0)
        off = sum(v for k, v in st.items() if k not in ("running", "runq"))
        if on:
            want[(S.tid_pid[tid], tid, False)] = on
        if off:
            want[(S.tid_pid[tid], tid, True)] = off
    got = {}
    for p in d["profiles"]:
        m = re.match(r"^(.*) (\d+) / (.*) (\d+)( \(off-CPU\))?$", p["name"])
        if not m:
            bad.append(f"profile name {p['name']!r}")
            continue
        if p["type"] != "sampled" or p["unit"] != "nanoseconds" or p["startValue"] != 0:
            bad.append(f"{p['name']}: type {p['type']}, unit {p['unit']}, start {p['startValue']}")
        if len(p["samples"]) != len(p["weights"]) or sum(p["weights"]) != p["endValue"]:
            bad.append(f"{p['name']}: weights do not add up to endValue")
        if any(w <= 0 for w in p["weights"]) or any(not s for s in p["samples"]):
            bad.append(f"{p['name']}: an empty stack or a weight <= 0")
        if any(i < 0 or i >= nframes for s in p["samples"] for i in s):
            bad.append(f"{p['name']}: a frame index outside the shared table")
        pid, tid, off = int(m.group(2)), int(m.group(4)), bool(m.group(5))
        leaves = {d["shared"]["frames"][s[-1]]["name"] for s in p["samples"] if s and 0 <= s[-1] < nframes}
        if off and not all(re.match(r"^\[\w+\]$", x) for x in leaves):
            bad.append(f"{p['name']}: off-CPU leaves {sorted(leaves)} are not all [state]")
        name = S.names.get(tid)
        if name is not None and m.group(3) != name:
            bad.append(f"{p['name']}: thread {tid} is named {name!r} in monitor.rec")
        got[(pid, tid, off)] = p["endValue"]
    if got != want:
        bad.append(f"profiles and their totals {sorted(got.items())} != sampler.rec's {sorted(want.items())}")
    kinds = [p["name"].endswith(OFF) for p in d["profiles"]]
    if kinds != sorted(kinds):
        bad.append("an off-CPU profile before an on-CPU one")
    ai = d.get("activeProfileIndex", 0)
    on_totals = [p["endValue"] for p in d["profiles"] if not p["name"].endswith(OFF)]
    if on_totals and d["profiles"][ai]["endValue"] != max(on_totals):
        bad.append("activeProfileIndex is not the busiest on-CPU profile")
    return bad


def loader(path, out):
    # What speedscope's bin/cli.mjs writes for `speedscope FILE`, loaded by #localProfilePath=.
    b64 = base64.b64encode(open(path, "rb").read()).decode()
    with open(out, "w") as f:
        f.write(f"speedscope.loadFileFromBase64({json.dumps(os.path.basename(path))}, {json.dumps(b64)})")
    return []


class Tables(html.parser.HTMLParser):
    """Every <table>'s rows as lists of cell texts, with each row's title and the bar widths in its cells."""

    def __init__(self):
        super().__init__()
        self.tables, self.stack, self.title = [], [], ""
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self.title_open = True
        if tag == "table":
            self.tables.append([])
            self.stack.append(len(self.tables) - 1)
        elif tag == "tr" and self.stack:
            self.tables[self.stack[-1]].append({"title": a.get("title"), "cells": [], "widths": []})
        elif tag in ("td", "th") and self.stack and self.tables[self.stack[-1]]:
            self.tables[self.stack[-1]][-1]["cells"].append("")
            self.cell = True
        elif tag == "div" and self.stack and self.tables[self.stack[-1]]:
            m = re.search(r"width:\s*([0-9.e+-]+)%", a.get("style") or "")
            if m:
                self.tables[self.stack[-1]][-1]["widths"].append(float(m.group(1)))

    def handle_endtag(self, tag):
        if tag == "table" and self.stack:
            self.stack.pop()
        if tag == "title":
            self.title_open = False

    def handle_data(self, data):
        if getattr(self, "title_open", False):
            self.title += data
        if self.stack and self.tables[self.stack[-1]] and self.tables[self.stack[-1]][-1]["cells"]:
            self.tables[self.stack[-1]][-1]["cells"][-1] += data


def frame_totals(d, p):
    """Per frame index: (total, self) as speedscope sums them, a frame counted once per sample."""
    tot, self_ = collections.Counter(), collections.Counter()
    for s, w in zip(p["samples"], p["weights"]):
        for i in set(s):
            tot[i] += w
        self_[s[-1]] += w
    return tot, self_


def check_dom(path, dom):
    bad = []
    d = json.load(open(path))
    t = Tables()
    t.feed(open(dom, encoding="utf-8").read())
    profs = d["profiles"]
    if t.title.strip() != f"{d['name']} - speedscope":
        bad.append(f"page title {t.title.strip()!r}: the file did not load")
    # The profile list: "#", "Name", "Total Weight".
    plist = [tb for tb in t.tables if tb and [c.strip() for c in tb[0]["cells"]] == ["#", "Name", "Total Weight"]]
    if len(plist) != 1:
        bad.append(f"{len(plist)} profile lists in the page")
        return bad
    rows = [r["cells"] for r in plist[0][1:]]
    shown = [(c[1].strip(), c[2].strip()) for c in rows]
    want = [(p["name"], speedscope_time(p["endValue"])) for p in profs]
    if shown != want:
        bad.append(f"profile list {shown} != the file's {want}")
    print(f"speedscope lists {len(shown)} profiles: " + "; ".join(f"{n} {w}" for n, w in shown), file=sys.stderr)
    # The sandwich table of the profile it opened on: Total, Self, Symbol Name.
    p = profs[d.get("activeProfileIndex", 0)]
    tot, self_ = frame_totals(d, p)
    names = d["shared"]["frames"]
    expect = collections.Counter((names[i]["name"], speedscope_time(tot[i]), speedscope_time(self_[i])) for i in tot)
    pct = collections.defaultdict(list)  # names repeat: a Python function at two lines is two frames
    for i in tot:
        pct[names[i]["name"]].append(100.0 * tot[i] / p["endValue"])
    sand = [r for tb in t.tables for r in tb if len(r["cells"]) == 3 and re.match(r"^\S+ \(", r["cells"][0])]
    if not sand:
        bad.append("no sandwich table rows")
    for r in sand:
        name = r["cells"][2].strip()
        row = (name, r["cells"][0].split(" (")[0], r["cells"][1].split(" (")[0])
        if expect[row] <= 0:
            bad.append(f"sandwich row {row} is no frame of {p['name']!r} (want one of {sorted(expect)[:5]}...)")
        else:
            expect[row] -= 1
        if r["widths"] and not any(abs(r["widths"][0] - x) <= 1e-3 for x in pct[name]):
            bad.append(f"sandwich row {name}: total bar {r['widths'][0]}% not in {pct[name]}%")
    print(f"speedscope's sandwich view of {p['name']!r}: {len(sand)} rows of {len(tot)} frames: "
          + "; ".join(f"{r['cells'][2].strip()} {r['cells'][0].strip()}" for r in sand[:6]), file=sys.stderr)
    if len(sand) < min(len(tot), 5):
        bad.append(f"{len(sand)} sandwich rows for {len(tot)} frames")
    return bad


def frames(path):
    d = json.load(open(path))
    p = d["profiles"][d.get("activeProfileIndex", 0)]
    names = d["shared"]["frames"]
    for s in p["samples"]:
        print(";".join(names[i]["name"] for i in s))
    return None


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    bad = {"file": check_file, "loader": loader, "dom": check_dom, "frames": frames}[cmd](*args)
    if bad is not None:
        print("ok" if not bad else "\n".join(bad[:6]))


if __name__ == "__main__":
    main()
