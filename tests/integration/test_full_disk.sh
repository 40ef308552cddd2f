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

# A block file system (ext4 in a loop-mounted image), where the records are sparse: each page gets its block
# before the shim first writes it. Filled to several depths, so that the record of the first process, of a
# fork, of a thread or of a reaped child is the one that finds no room: never a SIGBUS in the target.
if command -v mkfs.ext4 >/dev/null && truncate -s 4M "$T/ext4.img" && mkfs.ext4 -q -F "$T/ext4.img" 2>/dev/null &&
   mkdir -p "$T/e4" && mount -o loop "$T/ext4.img" "$T/e4" 2>/dev/null; then
  trap 'umount "$T/e4" 2>/dev/null; umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT
  "$FIXTURES/churn" 300 40 >"$T/churn.plain"
  for fill in 2400 2550 2600 2620 2660 2680; do
    rm -rf "$T/e4/run" "$T/e4/filler"
    head -c "${fill}k" /dev/zero >"$T/e4/filler" 2>/dev/null
    for how in "" "--no-sample"; do
      rm -rf "$T/e4/run"
      "$POOLPROF" run $how -o "$T/e4/run" -- "$FIXTURES/churn" 300 40 >"$T/churn.out" 2>"$T/churn.err"
      rc=$?
      if [[ $rc == 2 ]] && grep -q 'not writable' "$T/churn.err"; then
        ok "ext4 filled to ${fill}k ($how): refused before the target started"
        continue
      fi
      expect_eq "ext4 filled to ${fill}k ($how): target's exit status" "$rc" 0
      expect_eq "ext4 filled to ${fill}k ($how): target's output" "$(cat "$T/churn.out")" "$(cat "$T/churn.plain")"
    done
  done
  umount "$T/e4"
else
  echo "SKIP: cannot make and loop-mount a small ext4 here (mkfs.ext4, a loop device, root): sparse records on a full disk not checked"
fi
finish
