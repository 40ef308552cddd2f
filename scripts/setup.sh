#!/usr/bin/env bash
# setup.sh: installs the Debian packages poolprof needs (idempotent: a no-op when all are present) and builds it.
# usage: scripts/setup.sh [--no-build]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Every dependency, named once.
packages=(build-essential cmake pkg-config python3 python3.11 libpython3.11-dev python3-jsonschema libxml2-utils libunwind-dev libpfm4-dev libcriterion-dev libjansson-dev strace linux-perf chromium)

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

# Test tools from npm, pinned by their lock file: playwright-core drives the chromium above for
# tests/integration/test_html.sh. Only when npm is here: the profiler itself never needs it.
if command -v npm >/dev/null && [[ ! -d $here/tests/browser/html/node_modules/playwright-core ]]; then
  (cd "$here/tests/browser/html" && npm ci --no-audit --no-fund >/dev/null) || echo "setup: npm ci in tests/browser/html failed: test_html.sh will skip" >&2
fi

if [[ ${1:-} != --no-build ]]; then
  cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$here/build" -j"$(nproc)" >/dev/null
  echo "setup: built $here/build/poolprof" >&2
fi
