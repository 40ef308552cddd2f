#!/usr/bin/env python3
"""samprec.py: read RUNDIR/sampler.rec (libprof/samprec.h) and RUNDIR/monitor.rec (thread names) directly,
independent of the report, and evaluate a Python expression over them.

usage: samprec.py RUNDIR EXPR
Names bound for EXPR:
  S                     the parsed run (class Run below)
  states(sel)           {state: seconds} summed over the threads sel picks (a thread name, a tid, or a predicate(tid))
  total(sel)            seconds of all states of those threads
  share(sel, state)     states(sel)[state] / total(sel)
  dominant(sel)         the state with the most seconds
  tids(name)            tids whose (last) monitor.rec name is name
A torn last line is ignored, as the format says.
"""
import collections
import json
import sys


def unescape(s):
    out = bytearray()
    i = 0
    b = s.encode()
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode(errors="replace")


def lines(path):
    try:
        data = open(path, "rb").read().decode(errors="replace")
    except FileNotFoundError:
        return
    parts = data.split("\n")
    for ln in parts[:-1]:  # the last element is "" or a torn line
        f = ln.split(" ")
        if not f or not f[0]:
            continue
        kv = {}
        for x in f[1:]:
            k, _, v = x.partition("=")
            kv[k] = v
        yield f[0], kv


class Run:
    def __init__(self, rundir):
        self.ns = collections.defaultdict(lambda: collections.defaultdict(int))  # tid -> state -> ns
        self.n = collections.defaultdict(lambda: collections.defaultdict(int))   # tid -> state -> samples
        self.tid_pid = {}
        self.P = []       # P lines
        self.X = {}       # pid -> raw status
        self.H = None     # latest self-report
        self.O = None
        self.V = None
        for typ, kv in lines(f"{rundir}/sampler.rec"):
            if typ == "C":
                tid = int(kv["tid"])
                self.ns[tid][kv["state"]] += int(kv["ns"])
                self.n[tid][kv["state"]] += int(kv["n"])
                self.tid_pid[tid] = int(kv["pid"])
            elif typ == "P":
                self.P.append({k: (int(v) if k in ("pid", "ppid", "python", "t") else v) for k, v in kv.items()})
            elif typ == "X":
                self.X[int(kv["pid"])] = int(kv["status"])
            elif typ == "H":
                self.H = kv
            elif typ == "O":
                self.O = kv
            elif typ == "V":
                self.V = kv
        self.names = {}   # tid -> name (monitor.rec T lines)
        self.argv = {}    # pid -> argv list (N and E lines, latest)
        self.mon_pids = set()
        for typ, kv in lines(f"{rundir}/monitor.rec"):
            if typ == "T":
                self.names[int(kv["tid"])] = unescape(kv["name"])
            elif typ in ("N", "E"):
                pid = int(kv["pid"])
                self.mon_pids.add(pid)
                self.argv[pid] = [unescape(a) for a in kv.get("argv", "").split(",")]
        self.pids = {p["pid"] for p in self.P}

    def tids(self, name):
        return sorted(t for t, n in self.names.items() if n == name)

    def pick(self, sel):
        if callable(sel):
            return [t for t in self.ns if sel(t)]
        if isinstance(sel, int):
            return [sel]
        return self.tids(sel)

    def states(self, sel):
        acc = collections.defaultdict(float)
        for t in self.pick(sel):
            for st, v in self.ns.get(t, {}).items():
                acc[st] += v / 1e9
        return dict(acc)

    def total(self, sel):
        return sum(self.states(sel).values())

    def share(self, sel, state):
        tot = self.total(sel)
        return self.states(sel).get(state, 0.0) / tot if tot else 0.0

    def dominant(self, sel):
        s = self.states(sel)
        return max(s, key=s.get) if s else "none"


def main():
    S = Run(sys.argv[1])
    env = dict(S=S, states=S.states, total=S.total, share=S.share, dominant=S.dominant, tids=S.tids)
    v = eval(sys.argv[2], env)
    print(json.dumps(v) if not isinstance(v, str) else v)


if __name__ == "__main__":
    main()
