#!/usr/bin/env bash
# test_pyfuture.sh: a CPython version poolprof has never seen, made from the real 3.13 by patching a copy of its libpython:
# read from its own _Py_DebugOffsets where they are there (stacks of parent and fork), and, where they are not, refused
# in one line on the terminal and in measurement.notes while the run completes with the shim's figures.
. "$(dirname "$0")/lib.sh"
py=$(ls /root/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | head -1)
lib=$(ls /root/.pyenv/versions/3.13*/lib/libpython3.13.so.1.0 2>/dev/null | head -1)
if [[ -z $py || -z $lib ]]; then
  echo "skip: no CPython 3.13 with a shared libpython installed (pyenv) to make a future version from"
  exit 0
fi
patch() { python3 "$(dirname "$0")/patch_libpython.py" "$lib" "$T/$1/libpython3.13.so.1.0" "${@:2}"; }
mkdir -p "$T/v399" "$T/nodbg" "$T/mismatch"
# "3.99": Py_Version and the debug offsets' version both say so; the offsets themselves are 3.13's.
patch v399 --version 0x036300f0 --debug-version 0x036300f0
# "3.99" without _Py_DebugOffsets (their cookie gone): nothing to read its layout from.
patch nodbg --version 0x036300f0 --debug-version 0x036300f0 --cookie xxxxxxxx
# Py_Version says 3.99, the offsets 3.13: not believed.
patch mismatch --version 0x036300f0
expect_eq "the patched interpreter runs" "$(LD_LIBRARY_PATH=$T/v399 "$py" -c 'print(6 * 7)')" 42

prog="$SRC/tests/fixtures/py/fork_spin.py"
plain=$("$py" "$prog")
LD_LIBRARY_PATH=$T/v399 "$POOLPROF" run -o "$T/a" --json "$T/a.json" -- "$py" "$prog" >"$T/a.out" 2>"$T/a.err"
expect_eq "3.99 with offsets: exit status" "$?" 0
expect_eq "3.99 with offsets: output as without poolprof" "$(cat "$T/a.out")" "$plain"
expect_eq "3.99 with offsets: read as CPython 3.99 in parent and fork" \
  "$(python3 "$(dirname "$0")/samprec.py" "$T/a" "sorted(p['python'] for p in S.P if p['python'])")" "[399, 399]"
expect_eq "3.99 with offsets: the parent's function in the stacks" \
  "$(grep -c ';in_parent_(fork_spin.py:[0-9]*);spin_for_' "$T/a/stacks.folded" | awk '{print ($1 > 0)}')" 1
expect_eq "3.99 with offsets: the fork's function in the stacks" \
  "$(grep -c ';in_child_(fork_spin.py:[0-9]*);spin_for_' "$T/a/stacks.folded" | awk '{print ($1 > 0)}')" 1
expect_eq "3.99 with offsets: nothing refused" "$(grep -c 'not supported' "$T/a.err")" 0

# Without offsets: four threads on the GIL, which the shim measures whatever the sampler reads.
work="$SRC/tests/workloads/cpu_threads_gil.py"
plain=$("$py" "$work" 4 0.5)
LD_LIBRARY_PATH=$T/nodbg "$POOLPROF" run -o "$T/b" --json "$T/b.json" -- "$py" "$work" 4 0.5 >"$T/b.out" 2>"$T/b.err"
expect_eq "3.99 without offsets: exit status" "$?" 0
expect_eq "3.99 without offsets: output as without poolprof" "$(cat "$T/b.out")" "$plain"
why="CPython 3.99 is not supported (no _Py_DebugOffsets in its _PyRuntime)"
expect_eq "3.99 without offsets: one line on the terminal" "$(grep -c "$why: no Python stacks" "$T/b.err")" 1
expect_eq "3.99 without offsets: in the report" "$(q "$T/b.json" 'r["processes"][0]["python_unsupported"]')" "$why"
expect_eq "3.99 without offsets: named in measurement.notes" \
  "$(q "$T/b.json" 'sum(n.startswith("python_unsupported: '"$why"'") for n in r["measurement"]["notes"])')" 1
expect_eq "3.99 without offsets: the shim still found the GIL" "$(q "$T/b.json" 'r["overall"]["lock"]["gil"]')" true
expect_eq "3.99 without offsets: and its waits" "$(q "$T/b.json" 'r["overall"]["lock"]["wait_fraction"] > 0.3')" true
expect_eq "3.99 without offsets: the verdict says which figures are estimates" \
  "$(q "$T/b.json" 'any("could not be read" in x for s in [r["overall"]] + r["stages"] for x in s["recommendation"]["reasons"])')" true
expect_eq "3.99 without offsets: no Python frame in the stacks" "$(grep -c 'is_prime' "$T/b/stacks.folded")" 0

LD_LIBRARY_PATH=$T/mismatch "$POOLPROF" run --no-preload -o "$T/c" --json "$T/c.json" -- "$py" -c 'import time; time.sleep(0.3)' \
  >/dev/null 2>"$T/c.err"
expect_eq "version and offsets disagree: refused" "$(q "$T/c.json" 'r["processes"][0]["python_unsupported"]')" \
  "CPython 3.99: its _Py_DebugOffsets say version 3.13"
finish
