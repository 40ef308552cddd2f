#!/usr/bin/env bash
# test_schema.sh: reports of programs that exercise every part of the report (locks, semaphores, IPC, process trees, a static binary, CPython threads, a launcher, the sampler alone, a run `poolprof sweep --keep` profiled) validate against the schema the build generates (build/report.schema.json).
. "$(dirname "$0")/lib.sh"

# Debian's python3 with its python3-jsonschema (scripts/setup.sh installs it).
PY=/usr/bin/python3
if ! "$PY" -c 'import jsonschema' 2>/dev/null; then
  bad "python3-jsonschema is not installed (scripts/setup.sh installs it)"
  finish
fi

# valid NAME: $T/NAME.json against the schema, every violation listed
valid() {
  local out
  out=$("$PY" - "$(dirname "$POOLPROF")/report.schema.json" "$T/$1.json" <<'PY'
import json, sys, jsonschema
schema, report = (json.load(open(p)) for p in sys.argv[1:3])
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(report), key=lambda e: list(e.absolute_path))
for e in errors[:10]:
    print("/".join(map(str, e.absolute_path)) or "(root)", ":", e.message[:200])
sys.exit(1 if errors else 0)
PY
)
  if [[ $? -eq 0 ]]; then ok "$1: report matches the schema"; else bad "$1: report does not match the schema: $out"; fi
}

pp lock "$FIXTURES/lock_hold"; valid lock
pp sem "$FIXTURES/sem_handoff"; valid sem
pp pipe "$FIXTURES/pipe_bytes" "$T/reused.dat"; valid pipe
pp tree "$FIXTURES/spawn_tree"; valid tree
pp static "$FIXTURES/static_burn"; valid static
pp py "$PY" -c 'import threading, queue
q = queue.SimpleQueue()
def work():
    n = 0
    for i in range(2000000): n += i
    q.put(n)
t = [threading.Thread(target=work) for _ in range(3)]
[x.start() for x in t]; [q.get() for _ in t]; [x.join() for x in t]'
valid py
# The same records as a free-threaded CPython 3.13 would leave them (P lines gil=0): its GIL
# figures are null, which the schema must admit, and the process says "absent".
sed -E 's/^(P .*)python=[0-9]+ (gil=[01] )?/\1python=313 gil=0 /' "$T/py/sampler.rec" >"$T/py/sampler.rec.ft" &&
  mv "$T/py/sampler.rec.ft" "$T/py/sampler.rec"
"$POOLPROF" report "$T/py" --json "$T/py_nogil.json" >/dev/null 2>&1
valid py_nogil
expect_eq "py_nogil: the process's GIL" "$(q "$T/py_nogil.json" 'procs(r, lambda p: p["python"])[0]["gil"]')" absent
expect_eq "py_nogil: overall lock.gil" "$(q "$T/py_nogil.json" 'r["overall"]["lock"]["gil"]')" null
pp launched sh -c "exec $PY -c 'sum(range(3000000))'"; valid launched
"$POOLPROF" run --no-preload -o "$T/alone" --json "$T/alone.json" -- "$FIXTURES/lock_hold" >/dev/null 2>&1
valid alone
# A run `poolprof sweep --keep` profiled: its report has a `sweep`, which the schema must describe.
timeout 120 "$POOLPROF" sweep --workers 1,2 --repeat 1 --keep "$T/swept" -- "$FIXTURES/sweep_sleep" '{workers}' >/dev/null 2>&1
cp "$T/swept/profile-run/report.json" "$T/swept.json" 2>/dev/null
expect_eq "swept: the report has a sweep" "$(q "$T/swept.json" 'r["sweep"] is not None')" true
valid swept
finish
