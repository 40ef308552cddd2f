#!/usr/bin/env bash
# test_full_disk.sh: a run directory on a full disk stops the recording, never the target.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/small"
if ! mount -t tmpfs -o size=256k tmpfs "$T/small" 2>/dev/null; then
  echo "SKIP: cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN) to fill a disk"
  exit 0
fi
trap 'umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT
# fill most of it so the run directory runs out of space while the target runs
head -c 200k /dev/zero >"$T/small/filler" 2>/dev/null
"$FIXTURES/spawn_tree" >"$T/plain.out"
"$POOLPROF" run -o "$T/small/run" -- "$FIXTURES/spawn_tree" >"$T/full.out" 2>"$T/full.err"
rc=$?
expect_eq "target exit status on a full disk" "$rc" 0
expect_eq "target output on a full disk" "$(diff -q "$T/plain.out" "$T/full.out" >/dev/null && echo same || echo differs)" same
umount "$T/small"
finish
