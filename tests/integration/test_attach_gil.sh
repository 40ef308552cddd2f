#!/usr/bin/env bash
# test_attach_gil.sh: poolprof attach on a GIL-bound Python program started outside poolprof, on every CPython 3.11+
# here (Debian's static 3.11, pyenv's shared 3.11, 3.12 and 3.13): GIL found, is_prime in the folded stacks, the
# target ends as it would have.
. "$(dirname "$0")/lib.sh"
want=$(/usr/bin/python3 -c '
import math
def is_prime(n):
    if n % 2 == 0: return n == 2
    for d in range(3, int(math.sqrt(n)) + 1, 2):
        if n % d == 0: return False
    return True
print(sum(is_prime(1_000_000_000_039 + 2 * k) for k in range(6000)))')

check() {
  local name=$1 py=$2
  "$py" -c 'print(1)' >/dev/null # warm the page cache for the interpreter
  # Four threads testing 6000 numbers (1600 x 3.75): several seconds of GIL-bound work.
  "$py" "$SRC/tests/workloads/cpu_threads_gil.py" 4 3.75 >"$T/$name.target.out" 2>&1 &
  local target=$!
  sleep 0.5
  "$POOLPROF" attach --duration 2 -o "$T/$name" --json "$T/$name.json" "$target" >"$T/$name.attach.out" 2>"$T/$name.attach.err"
  expect_eq "$name: attach exit" "$?" 0
  expect_eq "$name: target no longer traced after detach" \
    "$(awk '/^TracerPid/{print $2}' /proc/$target/status 2>/dev/null || echo 0)" 0
  wait "$target"
  expect_eq "$name: target's own exit status" "$?" 0
  expect_eq "$name: target's output" "$(cat "$T/$name.target.out")" "$want"
  expect_eq "$name: overall.lock.gil" "$(q "$T/$name.json" 'r["overall"]["lock"]["gil"]')" true
  expect_eq "$name: GIL waits measured by the sampler" "$(q "$T/$name.json" 'r["overall"]["lock"]["wait_fraction"] > 0.3')" true
  expect_eq "$name: figures came from the sampler" "$(q "$T/$name.json" 'r["overall"]["sources"]["waits"]')" sampler
  expect_eq "$name: folded stacks name is_prime" "$(grep -c 'is_prime' "$T/$name/stacks.folded" | awk '{print ($1 > 0)}')" 1
  expect_eq "$name: GIL-held share of CPU is high" "$(q "$T/$name.json" 'r["overall"]["gil_held_share"] > 0.5')" true
  expect_eq "$name: no refusal" "$(grep -c 'no Python stacks' "$T/$name.attach.err")" 0
}

check static311 /usr/bin/python3
for v in 3.11 3.12 3.13; do
  py=$(ls /root/.pyenv/versions/$v*/bin/python$v 2>/dev/null | head -1)
  if [[ -n "$py" ]]; then
    check "py${v/./}" "$py"
  else
    echo "skip: no CPython $v installed (pyenv): attach not checked on it"
  fi
done
finish
