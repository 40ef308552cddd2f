#!/usr/bin/env bash
# test_pyrun.sh: `poolprof run` of a CPython program finds Python stacks in the process it execs and in that
# process's fork, on every CPython 3.11+ here: Debian's static 3.11, and shared-libpython builds of 3.11, 3.12
# (a table generated from its headers) and 3.13 (its own _Py_DebugOffsets), whose libpython is not mapped yet at
# the exec event. A CPython it cannot read (3.10) is refused with its version, on the terminal and in the report.
. "$(dirname "$0")/lib.sh"
prog="$SRC/tests/fixtures/py/fork_spin.py"

check() {
  local name=$1 py=$2 ver=$3
  local plain_out plain_rc
  plain_out=$("$py" "$prog"); plain_rc=$?
  "$POOLPROF" run --no-preload -o "$T/$name" --json "$T/$name.json" -- "$py" "$prog" >"$T/$name.out" 2>"$T/$name.err"
  expect_eq "$name: exit status as without poolprof" "$?" "$plain_rc"
  expect_eq "$name: output as without poolprof" "$(cat "$T/$name.out")" "$plain_out"
  expect_eq "$name: both processes read as CPython" \
    "$(q "$T/$name.json" '[(p["python"], p["python_unsupported"]) for p in r["processes"]]')" "[[true, null], [true, null]]"
  expect_eq "$name: the sampler read CPython $ver in both" \
    "$(python3 "$(dirname "$0")/samprec.py" "$T/$name" "sorted(p['python'] for p in S.P if p['python'])")" "[$ver, $ver]"
  expect_eq "$name: the parent's function in the Python stacks" \
    "$(grep -c ';in_parent_(fork_spin.py:[0-9]*);spin_for_' "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
  expect_eq "$name: the fork's function in the Python stacks" \
    "$(grep -c ';in_child_(fork_spin.py:[0-9]*);spin_for_' "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
  expect_eq "$name: the spinning line, from the line table" \
    "$(grep -c "spin_for_(fork_spin.py:$(grep -n 'n += 1' "$prog" | cut -d: -f1))" "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
  expect_eq "$name: no refusal on the terminal" "$(grep -c 'no Python stacks' "$T/$name.err")" 0
}

check static /usr/bin/python3 311

# python3 on PATH here is CPython 3.11 linked to libpython3.11.so (pyenv); find the real executable behind any shim.
shared=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [[ -n "$shared" ]] && ldd "$shared" 2>/dev/null | grep -q 'libpython3\.11'; then
  check shared "$shared" 311
else
  echo "skip: no CPython 3.11 with a shared libpython on PATH (python3 is $shared)"
fi

for v in 3.12 3.13; do
  py=$(ls /root/.pyenv/versions/$v*/bin/python$v 2>/dev/null | head -1)
  if [[ -n "$py" ]]; then
    check "py${v/./}" "$py" "${v/./}"
  else
    echo "skip: no CPython $v installed (pyenv): its stacks not checked"
  fi
done

# Without Python stacks (--stacks none) GIL waits are still told from other waits, on every version: 3.13 keeps
# its GIL in the interpreter, found by a look at it rather than by a sample's walk.
gil_states() {
  local name=$1 py=$2
  "$POOLPROF" run --no-preload --stacks none -o "$T/gs$name" --json "$T/gs$name.json" -- \
    "$py" "$SRC/tests/workloads/cpu_threads_gil.py" 4 0.5 >/dev/null 2>&1
  expect_eq "$name --stacks none: GIL waits found by the sampler" \
    "$(q "$T/gs$name.json" 'r["overall"]["states"]["gil"] > 1.0 and r["overall"]["lock"]["wait_fraction"] > 0.3')" true
}
gil_states 311 /usr/bin/python3
for v in 3.12 3.13; do
  py=$(ls /root/.pyenv/versions/$v*/bin/python$v 2>/dev/null | head -1)
  [[ -n "$py" ]] && gil_states "${v/./}" "$py"
done

# A CPython the reader cannot read is named, with its version, once its libpython is mapped.
other=$(ls /root/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | head -1)
if [[ -n "$other" ]]; then
  "$POOLPROF" run --no-preload -o "$T/v310" --json "$T/v310.json" -- "$other" -c 'import time; time.sleep(0.3)' \
    >/dev/null 2>"$T/v310.err"
  expect_eq "3.10: refused with its version in the report" \
    "$(q "$T/v310.json" 'r["processes"][0]["python_unsupported"]')" "CPython 3.10 is not supported (3.11 or later only)"
  expect_eq "3.10: and on the terminal" "$(grep -c 'CPython 3.10 is not supported (3.11 or later only): no Python stacks' "$T/v310.err")" 1
  # Its fork is the same image: refused alike, not silently without stacks.
  "$POOLPROF" run --no-preload -o "$T/f310" --json "$T/f310.json" -- "$other" "$prog" >/dev/null 2>"$T/f310.err"
  expect_eq "3.10: a fork of it refused too" \
    "$(q "$T/f310.json" '[p["python_unsupported"] for p in r["processes"]]')" \
    '["CPython 3.10 is not supported (3.11 or later only)", "CPython 3.10 is not supported (3.11 or later only)"]'
  expect_eq "3.10: one terminal line for both" "$(grep -c 'pid [0-9]* and 1 more: CPython 3.10 is not supported' "$T/f310.err")" 1

  # With the shim, which knows the process is CPython, the refusal is named all the same (it was
  # silent: python true, python_unsupported null, no note), in the report's notes too.
  "$POOLPROF" run -o "$T/s310" --json "$T/s310.json" -- "$other" -c 'import time; time.sleep(0.3)' >/dev/null 2>"$T/s310.err"
  expect_eq "3.10 under the shim: refused in the report" \
    "$(q "$T/s310.json" 'r["processes"][0]["python_unsupported"]')" "CPython 3.10 is not supported (3.11 or later only)"
  expect_eq "3.10 under the shim: named in measurement.notes" \
    "$(q "$T/s310.json" 'sum("python_unsupported: CPython 3.10 is not supported" in n for n in r["measurement"]["notes"])')" 1
  expect_eq "3.10 under the shim: one line on the terminal" \
    "$(grep -c "CPython 3.10 is not supported (3.11 or later only): no Python stacks" "$T/s310.err")" 1
else
  echo "skip: no CPython 3.10 installed to be refused"
fi
finish
