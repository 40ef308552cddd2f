#!/usr/bin/env bash
# test_layout.sh: the tree keeps the shape docs/ARCHITECTURE.md draws (file and function sizes, opening sentences, include and call directions).
set -u
: "${SRC:?SRC must point at the checkout}"
out=$(python3 "$SRC/scripts/check_layout.py" "$SRC" 2>&1)
rc=$?
printf '%s\n' "$out"
case "$out" in
  *"layout: 0 problems"*) [ "$rc" -eq 0 ] && exit 0 ;;
esac
echo "FAIL: scripts/check_layout.py exited $rc" >&2
exit 1
