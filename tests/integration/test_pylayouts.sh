#!/usr/bin/env bash
# test_pylayouts.sh: the committed CPython layouts (libprof/sampler/pylayouts/py3XX.inc) are still what their generator
# prints from the headers of every CPython 3.11+ installed here (Debian's python3.11-dev at least).
. "$(dirname "$0")/lib.sh"
out=$("$SRC/scripts/pylayouts.sh" --check 2>&1)
rc=$?
echo "$out"
expect_eq "every installed CPython's headers give the committed layout" "$rc" 0
expect_eq "at least one version's headers were checked" "$(grep -c ': matches py3' <<<"$out" | awk '{print ($1 > 0)}')" 1
finish
