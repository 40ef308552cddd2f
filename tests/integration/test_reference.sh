#!/usr/bin/env bash
# test_reference.sh: the reference workloads reach the verdicts a careful engineer would (../shared/reference).
set -u
ref="$SRC/../shared/reference/run"
if [[ ! -x $ref ]]; then
  echo "FAIL: no reference suite at $ref (shared/ must sit beside the checkout)"
  exit 1
fi
cd "$(mktemp -d)"
"$ref" "$POOLPROF" ${REFERENCE_WORKLOADS:-}
