#!/usr/bin/env bash
# test_pipeline.sh: a shell pipeline of programs, each one thread, whose work no one program holds, is sequential work whose parallel form is more pipelines (processes); one program doing nearly all of it keeps that program's own answer.
. "$(dirname "$0")/lib.sh"
F=$FIXTURES

# Three programs of 0.4, 0.3 and 0.3 s of CPU: the first holds 40% of the work.
pp three sh -c "$F/pipe_stage -a 0.4 </dev/null | $F/pipe_stage -b 0.3 | $F/pipe_stage -c 0.3 | wc -l"
expect_eq "three-stage pipeline exit" "$rc" 0
expect_eq "its output" "$(tr -d ' ' <"$T/three.out")" 30
expect_eq "a pipeline of one-thread programs: processes" "$(q "$T/three.json" 'r["overall"]["recommendation"]["model"]')" processes
expect_eq "the reason says why" "$(q "$T/three.json" 'any("pipeline of programs" in x for x in r["overall"]["recommendation"]["reasons"])')" true

# One program with 0.8 s of the 0.85: it is the work, and its own model stands (native, one
# thread: threads, the cheaper change, as for the program alone).
pp one sh -c "$F/pipe_stage -a 0.8 </dev/null | $F/pipe_stage -b 0.05 | wc -l"
expect_eq "two-stage pipeline exit" "$rc" 0
expect_eq "one program doing the work: threads" "$(q "$T/one.json" 'r["overall"]["recommendation"]["model"]')" threads
finish
