#!/usr/bin/env bash
# test_follow.sh: the shim follows fork, fork+exec, vfork+exec, posix_spawn, system(), sh -c and env -i, and a SIGKILLed child is reported as killed.
. "$(dirname "$0")/lib.sh"

"$FIXTURES/spawn_tree" >"$T/plain.out"
pp tree "$FIXTURES/spawn_tree"
expect_eq "spawn_tree exit" "$rc" 0
expect_eq "spawn_tree output unchanged" "$(diff -q "$T/plain.out" "$T/tree.out" >/dev/null && echo same || echo differs)" same
R=$T/tree.json
# each exec'd child ("child N") is a process of the report with its exit code, and had the shim
for code in 12 13 14 15; do
  expect_eq "child exiting $code recorded" \
    "$(q $R "[p['exit']['code'] for p in procs(r, lambda p: p['argv'][-2:] == ['child', '$code'])]")" "[$code]"
  expect_eq "child exiting $code had the shim" \
    "$(q $R "[p['shim'] for p in procs(r, lambda p: p['argv'][-2:] == ['child', '$code'])]")" "[true]"
done
expect_eq "plain fork child exit 11" "$(q $R "sorted(p['exit']['code'] for p in procs(r, lambda p: p['exit'].get('code') == 11))")" "[11]"
# A fork child's record is made when it first records: the one that burns and calls _exit makes it at
# _exit, its whole life in it (start at the fork, its 100 ms); the fork+exec child never records before
# its exec, so the exec'd image's record is its only one
expect_eq "plain fork child: its own record, from the fork, with its CPU" \
  "$(q $R "[(p['forked'], p['shim'], len(p['threads']), round(p['threads'][0]['cpu_seconds'], 1), p['threads'][0]['sources']['shim']) for p in procs(r, lambda p: p['exit'].get('code') == 11)]")" \
  '[[true, true, 1, 0.1, true]]'
expect_eq "fork+exec child: one record, the exec'd image's" \
  "$(q $R "[sum(1 for i in p['exec_chain'] if i['shim']) for p in procs(r, lambda p: p['argv'][-2:] == ['child', '12'])]")" "[1]"
expect_eq "killed child reported killed by 9" \
  "$(q $R "[(p['exit']['signal'], p['exit']['how']) for p in procs(r, lambda p: p['argv'][-1:] == ['hang'])]")" '[[9, "killed"]]'
# CPU of children is counted: 5 children x 100 ms + the fork child 100 ms
expect_near "overall cpu_seconds" "$(q $R 'r["overall"]["cpu_seconds"]')" 0.6 0.25 0.08

# env -i scrubs the environment: the shim re-injects itself at exec
pp envi env -i "$FIXTURES/burn_threads" 1 scrubbed 200
expect_eq "env -i exit" "$rc" 0
expect_eq "env -i: thread stage seen through the shim" "$(q $T/envi.json 'stage(r, "scrubbed")["threads"]')" 1
expect_eq "env -i: burn_threads had the shim" \
  "$(q $T/envi.json "[p['shim'] for p in procs(r, lambda p: p['argv'][0].endswith('burn_threads'))]")" "[true]"

# sh -c chains: a shell that runs a program which runs python
pp shc sh -c "sh -c '$FIXTURES/burn_threads 2 chained 150'"
expect_eq "sh -c chain: both threads of the grandchild" "$(q $T/shc.json 'stage(r, "chained")["threads"]')" 2
expect_near "sh -c chain: their CPU" "$(q $T/shc.json 'stage(r, "chained")["cpu_seconds"]')" 0.3 0.2 0.05

# Python multiprocessing workers (fork start method) are followed
cat >"$T/mp.py" <<'PY'
import multiprocessing as mp, time
def work(n):
    t = time.process_time()
    while time.process_time() - t < 0.2: pass
    return n
if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(2) as p:
        print(sum(p.map(work, range(4), chunksize=1)))
PY
pp mp /usr/bin/python3 "$T/mp.py"
expect_eq "multiprocessing exit" "$rc" 0
expect_eq "multiprocessing output" "$(cat "$T/mp.out")" 6
expect_eq "multiprocessing: 3 python processes" "$(q $T/mp.json "len(procs(r, lambda p: p['python']))")" 3
expect_near "multiprocessing: CPU of 4 tasks" "$(q $T/mp.json 'r["overall"]["cpu_seconds"]')" 0.85 0.3 0.1
finish
