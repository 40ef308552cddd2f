# lib.sh: helpers for the integration tests: run poolprof on a fixture, read its report, assert with tolerances.
set -u
: "${POOLPROF:?POOLPROF must point at build/poolprof}" "${FIXTURES:?}" "${SRC:?}"
T=$(mktemp -d /tmp/poolprof-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0
checks=0

# pp RUNNAME CMD...: poolprof run into $T/RUNNAME, report at $T/RUNNAME.json; sets $rc, stdout in $T/RUNNAME.out, stderr in .err
pp() {
  local name=$1; shift
  "$POOLPROF" run -o "$T/$name" --json "$T/$name.json" -- "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}

# q REPORT PYEXPR: evaluate a Python expression over the report (bound to r); helpers: stage(r, name), proc(r, pred)
q() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def stage(r, name):
    for s in r["stages"]:
        if s["name"] == name:
            return s
    raise SystemExit(f"no stage {name!r}: have {[s['name'] for s in r['stages']]}")
def procs(r, pred=lambda p: True):
    return [p for p in r["processes"] if pred(p)]
v = eval(sys.argv[2])
print(json.dumps(v) if not isinstance(v, str) else v)
PY
}

# attach_known_stack NAME [ENV=VALUE...]: a second of native stacks at 1 kHz, attached, of
# fixtures/known_stack (its main thread spins in main -> level_a -> level_b -> level_c), into $T/NAME
# (report $T/NAME.json, stderr $T/NAME.err); sets $rc to attach's exit status and $ks to the fixture's pid.
attach_known_stack() {
  local name=$1; shift
  "$FIXTURES/known_stack" >"$T/$name.ks.out" &
  ks=$!
  for _ in $(seq 100); do grep -q ready "$T/$name.ks.out" && break; sleep 0.05; done
  env "$@" "$POOLPROF" attach --duration 1 --stacks native --rate 1000 -o "$T/$name" --json "$T/$name.json" "$ks" \
    >/dev/null 2>"$T/$name.err"
  rc=$?
  kill "$ks"; wait "$ks" 2>/dev/null
}

ok() { checks=$((checks+1)); echo "ok: $*"; }
bad() { checks=$((checks+1)); failures=$((failures+1)); echo "FAIL: $*"; }

# expect_eq WHAT GOT WANT
expect_eq() { if [[ "$2" == "$3" ]]; then ok "$1 = $3"; else bad "$1: got '$2', want '$3'"; fi; }

# expect_near WHAT GOT WANT REL ABS: |got - want| <= max(REL*want, ABS)
expect_near() {
  if python3 -c "import sys; g,w,r,a=map(float,sys.argv[1:]); sys.exit(0 if abs(g-w) <= max(r*abs(w), a) else 1)" "$2" "$3" "$4" "$5"; then
    ok "$1 = $2 (want $3 ± max($4 rel, $5 abs))"
  else
    bad "$1: got $2, want $3 ± max($4 rel, $5 abs)"
  fi
}

# expect_call_time WHAT GOT IN_CALL RUNQ REL ABS: GOT (a sampled state's seconds) is the time a
# thread spent inside its calls (IN_CALL, by its own clock) less some of its run-queue time (RUNQ):
# a call's clock runs on while the woken thread waits for a CPU, which the sampler counts apart.
expect_call_time() {
  if python3 -c "import sys; g,w,q,r,a=map(float,sys.argv[1:]); t=max(r*abs(w), a); sys.exit(0 if w-q-t <= g <= w+t else 1)" "$2" "$3" "$4" "$5" "$6"; then
    ok "$1 = $2 (want $3 less up to $4 of run queue, ± max($5 rel, $6 abs))"
  else
    bad "$1: got $2, want $3 less up to $4 of run queue, ± max($5 rel, $6 abs)"
  fi
}

# expect_true WHAT PYBOOL
expect_true() { if [[ "$2" == "true" ]]; then ok "$1"; else bad "$1 (got $2)"; fi; }

finish() {
  echo "$((checks-failures)) passed, $failures failed"
  [[ $failures -eq 0 ]]
}
