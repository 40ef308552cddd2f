#!/usr/bin/env bash
# setup.sh: installs the Debian packages and npm test tools poolprof needs (idempotent: a no-op when all are present) and builds it.
# usage: scripts/setup.sh [--no-build]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Every dependency, named once.
packages=(build-essential cmake pkg-config python3 python3.11 libpython3.11-dev python3-jsonschema libxml2-utils libunwind-dev libpfm4-dev libcriterion-dev libjansson-dev strace linux-perf chromium)
# npm, for the test tools of tests/browser/ (speedscope and playwright-core, which test_speedscope.sh and
# test_html.sh drive chromium with), unless a
# Node.js that brings its own npm is there already (Debian's npm conflicts with such a nodejs).
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Each test tool directory installs exactly its lock, again only when the lock is newer than what is installed.
for d in "$here"/tests/browser/*/; do
  [[ -f $d/package-lock.json ]] || continue
  [[ $d/node_modules/.package-lock.json -nt $d/package-lock.json ]] && continue
  echo "setup: npm ci in ${d#"$here"/}" >&2
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
done

if [[ ${1:-} != --no-build ]]; then
  cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$here/build" -j"$(nproc)" >/dev/null
  echo "setup: built $here/build/poolprof" >&2
fi
