#!/usr/bin/env python3
"""check.py: the CI gate's two promises (issue 28), measured: a second form 30% slower fails `poolprof check`, naming the figure; two identical commands pass it, every repeat.

usage: bench/check.py [--poolprof build/poolprof] [--slow 5] [--equal 20] [--rounds 5] [--plain 12]
                      [--python python3] [--raw FILE]

The fixture is tests/fixtures/py/check_work.py: `check_work.py 1` is a fixed loop of pure-Python
arithmetic, `check_work.py 2` the same loop 40% longer, which makes the whole command (interpreter
start included) about 30% slower. How much slower it really is on this machine is measured first,
without poolprof: --plain interleaved pairs (ABBA), the median wall time of each form and their ratio.

Then:
  slow   --slow times: poolprof check --base 'PY W 1' --rounds R -- PY W 2
         the exit status (want 1), the figures found regressed, and the wall_seconds check of
         the overall stage (its change, 95% interval and p)
  equal  --equal times: poolprof check --base 'PY W 1' --rounds R -- PY W 1
         the exit status (want 0), and how many checks were inconclusive or regressed

Every check writes its JSON document (--format json=FILE); nothing but exit statuses and those
documents is read. Prints a Markdown section for bench/RESULTS.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "py", "check_work.py")


def plain_ratio(py, pairs):
    """Median wall time of each form without poolprof, interleaved ABBA."""
    t = {1: [], 2: []}
    for i in range(pairs):
        for form in ((1, 2) if i % 2 == 0 else (2, 1)):
            s = time.perf_counter()
            subprocess.run([py, FIXTURE, str(form)], check=True)
            t[form].append(time.perf_counter() - s)
    m1, m2 = statistics.median(t[1]), statistics.median(t[2])
    return m1, m2, m2 / m1


def one_check(poolprof, py, forms, rounds, tmp, i):
    out = os.path.join(tmp, f"check-{forms[0]}{forms[1]}-{i}.json")
    cmd = [poolprof, "check", "--base", f"{py} {FIXTURE} {forms[0]}", "--rounds", str(rounds),
           "--format", f"json={out}", "--", py, FIXTURE, str(forms[1])]
    s = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - s
    doc = json.load(open(out)) if os.path.exists(out) else None
    return p.returncode, doc, took, p.stderr.strip()


def wall_row(doc):
    for c in doc["checks"]:
        if c["stage"] == "overall" and c["figure"] == "wall_seconds":
            return c
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--poolprof", default=os.path.join(HERE, "..", "build", "poolprof"))
    ap.add_argument("--slow", type=int, default=5)
    ap.add_argument("--equal", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--plain", type=int, default=12)
    ap.add_argument("--python", default="python3")
    ap.add_argument("--raw", help="also write every check document's summary here (JSON)")
    a = ap.parse_args()
    poolprof = os.path.abspath(a.poolprof)

    m1, m2, ratio = plain_ratio(a.python, a.plain)
    print(f"plain: form 1 {m1 * 1000:.0f} ms, form 2 {m2 * 1000:.0f} ms, ratio {ratio:.3f} "
          f"(median of {a.plain} interleaved pairs)", file=sys.stderr)
    raw = {"plain": {"form1_s": m1, "form2_s": m2, "ratio": ratio}, "slow": [], "equal": []}
    with tempfile.TemporaryDirectory(prefix="bench-check.") as tmp:
        # Interleave the two kinds of check (a slow one, then its share of the equal ones) so both meet
        # the same machine.
        seq = []
        si = ei = 0
        while si < a.slow or ei < a.equal:
            if si < a.slow:
                seq.append("slow"); si += 1
            for _ in range(max(1, a.equal // max(1, a.slow))):
                if ei < a.equal:
                    seq.append("equal"); ei += 1
        for i, kind in enumerate(seq):
            forms = (1, 2) if kind == "slow" else (1, 1)
            rc, doc, took, err = one_check(poolprof, a.python, forms, a.rounds, tmp, i)
            row = wall_row(doc) if doc else None
            rec = {"exit": rc, "seconds": took, "stderr": err[-300:] if rc not in (0, 1, 4) else ""}
            if doc:
                rec["regressed"] = [f'{c["stage"]} {c["figure"]}' for c in doc["checks"] if c["result"] == "regressed"]
                rec["inconclusive"] = [f'{c["stage"]} {c["figure"]}' for c in doc["checks"]
                                       if c["result"] == "inconclusive"]
                rec["wall"] = {k: row[k] for k in ("change", "interval", "p", "result")} if row else None
            raw[kind].append(rec)
            print(f"{kind} {i}: exit {rc} in {took:.1f} s; regressed {rec.get('regressed')}; "
                  f"wall {rec.get('wall')}", file=sys.stderr)

    if a.raw:
        json.dump(raw, open(a.raw, "w"), indent=1)

    slow, equal = raw["slow"], raw["equal"]
    def exits(rs):
        c = {}
        for r in rs:
            c[r["exit"]] = c.get(r["exit"], 0) + 1
        return ", ".join(f"{n} x exit {e}" for e, n in sorted(c.items()))
    print(f"### Latest run ({time.strftime('%Y-%m-%d')})\n")
    print(f"Fixture `tests/fixtures/py/check_work.py`, {a.rounds} rounds a side (ABBA), `{a.python}`.\n")
    print(f"Without poolprof ({a.plain} interleaved pairs, medians): form 1 {m1 * 1000:.0f} ms, "
          f"form 2 {m2 * 1000:.0f} ms: **{(ratio - 1) * 100:.1f}% slower**.\n")
    print("| check | repeats | exit statuses | wall_seconds change (median) | its 95% intervals | p | "
          "figures found regressed |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in (("form 2 against form 1", slow), ("form 1 against form 1", equal)):
        walls = [r["wall"] for r in rs if r.get("wall")]
        ch = statistics.median(w["change"] for w in walls) if walls else float("nan")
        ivs = [w["interval"] for w in walls if w.get("interval")]
        iv = (f'{min(v[0] for v in ivs):.3f} .. {max(v[1] for v in ivs):.3f} (lowest lo .. highest hi)'
              if ivs else "—")
        ps = [w["p"] for w in walls if w.get("p") is not None]
        pr = f"{min(ps):.3g} .. {max(ps):.3g}" if ps else "—"
        figs = {}
        for r in rs:
            for f in r.get("regressed", []):
                figs[f] = figs.get(f, 0) + 1
        fs = ", ".join(f"{f} ({n}/{len(rs)})" for f, n in sorted(figs.items())) or "none"
        print(f"| {name} | {len(rs)} | {exits(rs)} | {ch:.3f} | {iv} | {pr} | {fs} |")
    inc = sum(1 for r in equal if r.get("inconclusive"))
    print(f"\nIdentical sides: {inc} of {len(equal)} checks had an inconclusive figure (exit 0 with a warning; "
          f"4 under --strict).")
    ok = all(r["exit"] == 1 and "overall wall_seconds" in r.get("regressed", []) for r in slow) and \
        all(r["exit"] == 0 for r in equal)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
