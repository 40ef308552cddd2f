#!/usr/bin/env bash
# test.sh: installs dependencies, builds, and runs the whole test suite (unit, integration, reference workloads).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
cd "$here/build"
ctest --output-on-failure --timeout 300 -j1
