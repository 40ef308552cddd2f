#!/usr/bin/env bash
# pylayouts.sh: regenerates libprof/sampler/pylayouts/py3XX.inc (the CPython layouts the reader reads) from the headers
# of every CPython 3.11+ found here, or with --check says whether the committed files still match those headers.
# Headers searched: /usr/include/python3.*, and each pyenv version's include/python3.* (PYENV_ROOT or ~/.pyenv).
# Exit status: 0 done (or every file checked matches); 1 a committed file differs from its headers (--check); 2 usage.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir="$here/libprof/sampler/pylayouts"
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/pylayouts.sh [--check]" >&2; exit 2 ;;
esac
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0 seen=0
for inc in /usr/include/python3.* "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/include/python3.*; do
  [[ -f $inc/Python.h && -f $inc/internal/pycore_frame.h ]] || continue
  minor=$(sed -n 's/^#define PY_MINOR_VERSION[[:space:]]*\([0-9]*\).*/\1/p' "$inc/patchlevel.h")
  [[ -n $minor && $minor -ge 11 ]] || continue
  # A free-threaded build's headers describe another layout (Py_GIL_DISABLED): not the table of its version.
  grep -qs '^#define Py_GIL_DISABLED 1' "$inc/pyconfig.h" && continue
  out="$tmp/py3$minor.$seen.inc"
  if ! "$cc" -I"$inc" -o "$tmp/gen" "$dir/gen.c" 2>"$tmp/cc.err" || ! "$tmp/gen" "$out"; then
    echo "pylayouts: $inc: the generator failed: $(head -1 "$tmp/cc.err")" >&2
    status=1
    continue
  fi
  seen=$((seen + 1))
  want="$dir/py3$minor.inc"
  if ((check)); then
    if [[ ! -f $want ]]; then
      echo "pylayouts: $inc: no committed py3$minor.inc (the reader does not know this version's table)"
    elif cmp -s "$out" "$want"; then
      echo "pylayouts: $inc: matches py3$minor.inc"
    else
      echo "pylayouts: $inc: differs from the committed py3$minor.inc:" >&2
      diff "$want" "$out" >&2
      status=1
    fi
  else
    cp "$out" "$want" && echo "pylayouts: wrote py3$minor.inc from $inc"
  fi
done
((seen)) || echo "pylayouts: no CPython 3.11+ headers found"
exit $status
