#!/usr/bin/env bash
# test_pyrun.sh: `poolprof run` of a CPython program finds Python stacks in the process it execs and in that
# process's fork, for Debian's static interpreter and for an interpreter linked to a shared libpython (whose
# libpython is not mapped yet at the exec event), and refuses a CPython that is not 3.11 with its version.
. "$(dirname "$0")/lib.sh"
prog="$SRC/tests/fixtures/py/fork_spin.py"

check() {
  local name=$1 py=$2
  local plain_out plain_rc
  plain_out=$("$py" "$prog"); plain_rc=$?
  "$POOLPROF" run --no-preload -o "$T/$name" --json "$T/$name.json" -- "$py" "$prog" >"$T/$name.out" 2>"$T/$name.err"
  expect_eq "$name: exit status as without poolprof" "$?" "$plain_rc"
  expect_eq "$name: output as without poolprof" "$(cat "$T/$name.out")" "$plain_out"
  expect_eq "$name: both processes read as CPython 3.11" \
    "$(q "$T/$name.json" '[(p["python"], p["python_unsupported"]) for p in r["processes"]]')" "[[true, null], [true, null]]"
  expect_eq "$name: the parent's function in the Python stacks" \
    "$(grep -c ';in_parent_(fork_spin.py:[0-9]*);spin_for_' "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
  expect_eq "$name: the fork's function in the Python stacks" \
    "$(grep -c ';in_child_(fork_spin.py:[0-9]*);spin_for_' "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
}

check static /usr/bin/python3

# python3 on PATH here is CPython 3.11 linked to libpython3.11.so (pyenv); find the real executable behind any shim.
shared=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [[ -n "$shared" ]] && ldd "$shared" 2>/dev/null | grep -q 'libpython3\.11'; then
  check shared "$shared"
else
  echo "skip: no CPython 3.11 with a shared libpython on PATH (python3 is $shared)"
fi

# A CPython that is not 3.11 is named, with its version, once its libpython is mapped.
other=$(ls /root/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | head -1)
if [[ -n "$other" ]]; then
  "$POOLPROF" run --no-preload -o "$T/v312" --json "$T/v312.json" -- "$other" -c 'import time; time.sleep(0.3)' \
    >/dev/null 2>"$T/v312.err"
  expect_eq "3.12: refused with its version in the report" \
    "$(q "$T/v312.json" 'r["processes"][0]["python_unsupported"]')" "CPython 3.12 is not supported (3.11 only)"
  expect_eq "3.12: and on the terminal" "$(grep -c 'CPython 3.12 is not supported (3.11 only): no Python stacks' "$T/v312.err")" 1
else
  echo "skip: no CPython 3.12 installed to be refused"
fi

# With the shim, which knows the process is CPython, the refusal is named all the same (it was
# silent: python true, python_unsupported null, no note), in the report's notes too.
for v in 3.12 3.13; do
  other=$(ls /root/.pyenv/versions/$v*/bin/python$v 2>/dev/null | head -1)
  if [[ -z "$other" ]]; then
    echo "note: no CPython $v installed: its refusal under the shim not checked"
    continue
  fi
  tag=${v/./}
  "$POOLPROF" run -o "$T/s$tag" --json "$T/s$tag.json" -- "$other" -c 'import time; time.sleep(0.3)' >/dev/null 2>"$T/s$tag.err"
  expect_eq "$v under the shim: refused in the report" \
    "$(q "$T/s$tag.json" 'r["processes"][0]["python_unsupported"]')" "CPython $v is not supported (3.11 only)"
  expect_eq "$v under the shim: named in measurement.notes" \
    "$(q "$T/s$tag.json" 'sum("python_unsupported: CPython '"$v"' is not supported" in n for n in r["measurement"]["notes"])')" 1
  expect_eq "$v under the shim: one line on the terminal" "$(grep -c "CPython $v is not supported (3.11 only): no Python stacks" "$T/s$tag.err")" 1
done
finish
