#!/usr/bin/env bash
# test_terminal.sh: the terminal report says what its figures belong to (processes left out of overall counted in the header, a thread stage's RSS labelled as its process's) and how far each verdict holds (confidence, ties).
. "$(dirname "$0")/lib.sh"
# A launcher (a shell running two helpers, then exec'ing the program) before a program with named threads.
pp launched sh -c "/bin/true; /bin/true; exec $FIXTURES/cond_queue"
expect_eq "exit" "$rc" 0
expect_eq "header counts 3 processes" "$(grep -c "usable CPUs, 3 processes$" "$T/launched.err")" 1
expect_eq "and says 2 are left out" "$(grep -c "^  2 of them a launcher's, left out of overall" "$T/launched.err")" 1
expect_eq "every line within 80 columns" "$(awk 'length > 80' "$T/launched.err" | wc -l)" 0
expect_eq "overall holds the program alone" "$(q "$T/launched.json" 'r["overall"]["processes"]')" 1
# stage "consumer" is two threads of the program: the memory beside it is the process's
rss=$(awk '/^consumer/{s=1} s && /RSS/{print; exit}' "$T/launched.err")
expect_eq "thread stage's RSS is its process's: $rss" "$([[ $rss == "  RSS of its process:"* ]] && echo yes || echo no)" yes
rss=$(awk '/^overall/{s=1} s && /RSS/{print; exit}' "$T/launched.err")
expect_eq "overall's RSS is its own: $rss" "$([[ $rss == "  RSS:"* ]] && echo yes || echo no)" yes
# one process: "1 process"
pp one "$FIXTURES/cond_queue"
expect_eq "singular" "$(grep -c "usable CPUs, 1 process$" "$T/one.err")" 1
# Two native threads burning CPU: 2 workers is clear, and threads or processes of it tie.
pp burn "$FIXTURES/burn_threads" 2 w 400
stages=$(grep -c "^  verdict:" "$T/burn.err")
expect_eq "a confidence line under every verdict" "$(grep -c "^  confidence: \(high\|medium\|low\) (" "$T/burn.err")" "$stages"
expect_eq "the tie is said" "$(awk '/^overall/{s=1} s && /runner-up/{print; exit}' "$T/burn.err" | grep -c "a tie")" 1
expect_eq "JSON: tie" "$(q "$T/burn.json" 'r["overall"]["recommendation"]["tie"]')" true
expect_true "JSON: confidence in [0, 1]" "$(q "$T/burn.json" '0 <= r["overall"]["recommendation"]["confidence"] <= 1 and "true" or "false"')"
finish
