#!/usr/bin/env bash
# test_reference.sh: the reference workloads reach the verdicts a careful engineer would (../shared/reference).
set -u
ref="$SRC/../shared/reference/run"
if [[ ! -x $ref ]]; then
  # A clone of the project alone has no shared reference suite: skipped (ctest's SKIP_RETURN_CODE), not failed.
  echo "skip: no reference suite at $ref (it sits beside the checkout in ../shared)"
  exit 77
fi
cd "$(mktemp -d)"
"$ref" "$POOLPROF" ${REFERENCE_WORKLOADS:-}
