#!/usr/bin/env bash
# test_terminal.sh: the terminal report says what its figures belong to: processes left out of overall are counted in the header, and a thread stage's RSS is labelled as its process's.
. "$(dirname "$0")/lib.sh"
# A launcher (a shell running two helpers, then exec'ing the program) before a program with named threads.
pp launched sh -c "/bin/true; /bin/true; exec $FIXTURES/cond_queue"
expect_eq "exit" "$rc" 0
head=$(grep -m1 "usable CPUs" "$T/launched.err")
expect_eq "header counts 3 processes, 2 left out: $head" \
  "$([[ $head == *"3 processes (2 left out of overall"* ]] && echo yes || echo no)" yes
expect_eq "overall holds the program alone" "$(q "$T/launched.json" 'r["overall"]["processes"]')" 1
# stage "consumer" is two threads of the program: the memory beside it is the process's
rss=$(awk '/^consumer/{s=1} s && /RSS/{print; exit}' "$T/launched.err")
expect_eq "thread stage's RSS is its process's: $rss" "$([[ $rss == "  RSS of its process:"* ]] && echo yes || echo no)" yes
rss=$(awk '/^overall/{s=1} s && /RSS/{print; exit}' "$T/launched.err")
expect_eq "overall's RSS is its own: $rss" "$([[ $rss == "  RSS:"* ]] && echo yes || echo no)" yes
# one process: "1 process"
pp one "$FIXTURES/cond_queue"
expect_eq "singular" "$(grep -c "usable CPUs, 1 process$" "$T/one.err")" 1
finish
