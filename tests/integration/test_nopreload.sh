#!/usr/bin/env bash
# test_nopreload.sh: with --no-preload the sampler alone (ptrace, /proc, CPython memory) reaches the reference verdicts for CPU/wall, I/O and locks.
set -u
ref="$SRC/../shared/reference/run"
if [[ ! -x $ref ]]; then
  # A clone of the project alone has no shared reference suite: skipped (ctest's SKIP_RETURN_CODE), not failed.
  echo "skip: no reference suite at $ref (it sits beside the checkout in ../shared)"
  exit 77
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
