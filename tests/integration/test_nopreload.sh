#!/usr/bin/env bash
# test_nopreload.sh: with --no-preload the sampler alone (ptrace, /proc, CPython memory) reaches the reference verdicts for CPU/wall, I/O and locks.
set -u
ref="$SRC/../shared/reference/run"
if [[ ! -x $ref ]]; then
  echo "FAIL: no reference suite at $ref (shared/ must sit beside the checkout)"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The reference runner calls "POOLPROF run --json FILE -- CMD": put --no-preload after "run".
cat >"$work/poolprof" <<SH
#!/bin/sh
cmd=\$1; shift
exec "$POOLPROF" "\$cmd" --no-preload "\$@"
SH
chmod +x "$work/poolprof"
cd "$work"
"$ref" "$work/poolprof" io_fetch_seq cpu_primes_seq cpu_threads_gil c_parallel_cpu c_global_lock
