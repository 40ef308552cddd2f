#!/usr/bin/env bash
# demo.sh: installs dependencies, builds, and profiles the bundled two-stage demo pipeline; prints the verdict.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
out=$(mktemp -d /tmp/poolprof-demo.XXXXXX)
exec "$here/build/poolprof" run -o "$out/run" --json "$out/report.json" -- python3 "$here/demo/pipeline.py"
