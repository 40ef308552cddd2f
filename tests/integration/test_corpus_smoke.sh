#!/usr/bin/env bash
# test_corpus_smoke.sh: the truth corpus stays runnable: every bench/corpus program.json is valid, and one program of each kind builds, runs each of its models and is profiled (bench/accuracy.py --smoke; the scoring itself is a benchmark, not a test).
set -u
: "${POOLPROF:?}" "${SRC:?}"
work="$(dirname "$POOLPROF")/corpus"
python3 "$SRC/bench/accuracy.py" --smoke --poolprof "$POOLPROF" --work "$work"
