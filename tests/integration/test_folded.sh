#!/usr/bin/env bash
# test_folded.sh: the folded formats read as flamegraph.pl reads them (^(.*) (\d+)$, frames split on ';'): every line
# parses with a positive count, the first three frames are the thread's stage, its process "comm-pid" and the thread
# "name-tid", names with spaces and ';' escaped, and a fixture's known native chain sits under its own thread.
. "$(dirname "$0")/lib.sh"

# parse FILE REPORT [OFFCPU]: a flamegraph.pl-style read of FILE; prints one word per finding, "ok" when all hold.
# The stage must be one the report has (or overall), escaped as frames are; the process and thread ones it lists.
parse() {
  python3 - "$@" <<'PY'
import json, re, sys
path, report = sys.argv[1], sys.argv[2]
offcpu = len(sys.argv) > 3
r = json.load(open(report))
esc = lambda n: n.replace(";", ":").replace(" ", "_").replace("\n", "_").replace("\r", "_")  # as poolprof writes names
stages = {esc(s["name"]) for s in r["stages"]} | {"overall"}
threads = {(p["pid"], t["tid"]) for p in r["processes"] for t in p["threads"]}
bad = []
lines = open(path).read().split("\n")
if lines[-1] != "":
    bad.append("no final newline")
lines = lines[:-1]
if not lines:
    bad.append("no lines")
for l in lines:
    m = re.match(r"^(.*) (\d+)$", l)
    if not m:
        bad.append(f"unparsed: {l!r}")
        continue
    frames, count = m.group(1).split(";"), int(m.group(2))
    if count <= 0:
        bad.append(f"count {count}: {l!r}")
    if len(frames) < 4 or any(not f or " " in f for f in frames):
        bad.append(f"frames: {l!r}")
        continue
    pm, tm = re.match(r"^(.+)-(\d+)$", frames[1]), re.match(r"^(.+)-(\d+)$", frames[2])
    if frames[0] not in stages:
        bad.append(f"stage {frames[0]!r} not in the report: {l!r}")
    if not pm or not tm or (int(pm.group(2)), int(tm.group(2))) not in threads:
        bad.append(f"process;thread not a thread of the report: {l!r}")
    if offcpu and not re.match(r"^\[\w+\]$", frames[-1]):
        bad.append(f"no [state] leaf: {l!r}")
print("ok" if not bad else "\n".join(bad[:5]))
PY
}

# sum_under FILE PREFIX: the counts of the lines whose frames start with PREFIX (a ';'-joined frame list)
sum_under() { awk -v p="$2;" 'index($0, p) == 1 { n += $NF } END { print n + 0 }' "$1"; }

# ---- threads named apart from their process: the thread-name stage ---------------------------------------------
pp burn "$FIXTURES/burn_threads" 2 burner 300
expect_eq "burn: exit 0" "$rc" 0
expect_eq "burn: stacks.folded reads as flamegraph.pl reads it" "$(parse "$T/burn/stacks.folded" "$T/burn.json")" ok
expect_eq "burn: stacks-offcpu.folded reads so too, [state] leaves" \
  "$(parse "$T/burn/stacks-offcpu.folded" "$T/burn.json" offcpu)" ok
pid=$(q "$T/burn.json" '[p["pid"] for p in r["processes"] if p["name"] == "burn_threads"][0]')
burners=$(q "$T/burn.json" '" ".join(str(t["tid"]) for p in r["processes"] for t in p["threads"] if t["name"] == "burner")')
expect_eq "burn: the report has the burner stage" "$(q "$T/burn.json" 'stage(r, "burner")["source"]')" thread-name
for tid in $burners; do
  # ~300 ms of CPU at the default rate: most of it in worker, under burner;burn_threads-PID;burner-TID.
  n=$(awk -v p="burner;burn_threads-$pid;burner-$tid;" 'index($0, p) == 1 && /;worker( |;)/ { n += $NF } END { print n + 0 }' "$T/burn/stacks.folded")
  expect_true "burn: thread $tid's worker samples under burner;burn_threads-$pid;burner-$tid (got $n)" \
    "$( ((n >= 5)) && echo true || echo false)"
done
expect_eq "burn: the main thread (named as its process) under overall" \
  "$(grep -c "^overall;burn_threads-$pid;burn_threads-$pid;" "$T/burn/stacks-offcpu.folded" | awk '{print ($1 > 0)}')" 1
expect_eq "burn: no burner sample under another stage" "$(grep -v '^burner;' "$T/burn/stacks.folded" | grep -c ';burner-')" 0

# ---- a thread name with a space and a ';': escaped as frames are ------------------------------------------------
pp esc "$FIXTURES/burn_threads" 1 "a b;c" 200
expect_eq "esc: exit 0" "$rc" 0
expect_eq "esc: stacks.folded still parses" "$(parse "$T/esc/stacks.folded" "$T/esc.json")" ok
expect_eq "esc: the stage and thread named a_b:c" \
  "$(grep -c '^a_b:c;burn_threads-[0-9]*;a_b:c-[0-9]*;' "$T/esc/stacks.folded" | awk '{print ($1 > 0)}')" 1

# ---- a known native chain under its own thread ------------------------------------------------------------------
attach_known_stack ks
expect_eq "known_stack: attach exit" "$rc" 0
expect_eq "known_stack: stacks.folded reads as flamegraph.pl reads it" "$(parse "$T/ks/stacks.folded" "$T/ks.json")" ok
# The main thread (tid = pid) spins in main -> level_a -> level_b -> level_c for the whole second.
total=$(sum_under "$T/ks/stacks.folded" "overall;known_stack-$ks;known_stack-$ks")
chain=$(awk -v p="overall;known_stack-$ks;known_stack-$ks;" 'index($0, p) == 1 && /;main;level_a;level_b;level_c /{ n += $NF } END { print n + 0 }' "$T/ks/stacks.folded")
expect_true "known_stack: main;level_a;level_b;level_c under overall;known_stack-$ks;known_stack-$ks in >= 500 samples (got $chain of $total)" \
  "$( ((chain >= 500)) && echo true || echo false)"
expect_eq "known_stack: the reader thread's read under its own thread, off CPU" \
  "$(grep -c "^overall;known_stack-$ks;known_stack-[0-9]*;.*thread_main;blocked_in_read.*;\[[a-z]*\] [0-9]*$" "$T/ks/stacks-offcpu.folded" | awk '{print ($1 > 0)}')" 1
expect_eq "known_stack: the spinning chain is the main thread's alone" \
  "$(grep ';main;level_a;level_b;level_c ' "$T/ks/stacks.folded" | grep -vc "^overall;known_stack-$ks;known_stack-$ks;")" 0

finish
