#!/usr/bin/env bash
# test_exit_status.sh: poolprof passes the target's exit status, signals, stdin/stdout, errno and descriptors through unchanged.
. "$(dirname "$0")/lib.sh"

pp code0 "$FIXTURES/exit_with" code 0;   expect_eq "exit 0 propagates" "$rc" 0
pp code3 "$FIXTURES/exit_with" code 3;   expect_eq "exit 3 propagates" "$rc" 3
pp sig9 "$FIXTURES/exit_with" signal 9;  expect_eq "SIGKILL becomes 128+9" "$rc" 137
pp sig15 "$FIXTURES/exit_with" signal 15; expect_eq "SIGTERM becomes 128+15" "$rc" 143
expect_eq "report records the signal" "$(q "$T/sig15.json" 'r["exit"]["signal"]')" 15
expect_eq "report records the code" "$(q "$T/code3.json" 'r["exit"]["code"]')" 3

# stdin and stdout pass through byte for byte
head -c 300000 /dev/urandom >"$T/in.bin"
"$POOLPROF" run -o "$T/cat" -- cat <"$T/in.bin" >"$T/cat.bin" 2>"$T/cat.err"
expect_eq "stdin to stdout through cat" "$(cmp -s "$T/in.bin" "$T/cat.bin" && echo same)" same
expect_eq "poolprof prints nothing on stdout" "$(python3 -c 'import sys; print(len(open(sys.argv[1],"rb").read()))' "$T/cat.bin")" 300000

# descriptors, errno after interposed calls: same output with and without the shim
"$FIXTURES/fd_errno" >"$T/plain.out" 2>&1
pp fd "$FIXTURES/fd_errno"
expect_eq "fd/errno fixture output unchanged" "$(diff "$T/plain.out" "$T/fd.out" >/dev/null && echo same || diff "$T/plain.out" "$T/fd.out")" same

# a shell pipeline with its own exit status
pp shell sh -c 'echo hello; exit 42'
expect_eq "sh -c exit 42" "$rc" 42
expect_eq "sh -c output" "$(cat "$T/shell.out")" hello
finish
