#!/usr/bin/env bash
# test_waits.sh: hand-offs are not contention: a condition-variable work queue and CPython Event waits read as idle hand-offs, a pipeline's consumer waiting in stdio for its producer is the tree's IPC and idle, and the terminal says "(GIL)" only where the GIL was waited on.
. "$(dirname "$0")/lib.sh"
# lockline NAME: the overall "lock wait" line of the terminal report of run NAME
lockline() { "$POOLPROF" report "$T/$1" | awk '/^overall/{o=1} o && /lock wait/{print; exit}'; }

# A native producer/consumer on a condition variable: the consumers wait for work, not for a lock.
pp cond "$FIXTURES/cond_queue"
expect_eq "cond_queue exit" "$rc" 0
expect_near "consumers' hand-off wait" "$(q "$T/cond.json" 'stage(r, "consumer")["handoff_wait_seconds"]')" 0.6 0.15 0.06
expect_near "consumers' lock wait" "$(q "$T/cond.json" 'stage(r, "consumer")["lock"]["wait_seconds"]')" 0 0 0.02
expect_near "consumers' lock wait fraction" "$(q "$T/cond.json" 'stage(r, "consumer")["lock"]["wait_fraction"]')" 0 0 0.05

# A threading.Lock held 0.25 s by the main thread while another waits: a lock wait, not the GIL's.
pp pylock /usr/bin/python3 -c 'import threading, time
lk = threading.Lock()
def locker():
    time.sleep(0.05); lk.acquire(); lk.release()
lk.acquire(); t = threading.Thread(target=locker); t.start(); time.sleep(0.3); lk.release(); t.join()'
expect_eq "python lock exit" "$rc" 0
expect_near "threading.Lock wait" "$(q "$T/pylock.json" 'r["overall"]["lock"]["wait_seconds"]')" 0.25 0.15 0.04
line=$(lockline pylock)
expect_eq "no (GIL) beside a threading.Lock wait: $line" "$([[ $line == *"(GIL)"* ]] && echo yes || echo no)" no

# Four CPU-bound CPython threads: the lock wait is the GIL's, and the terminal says so.
pp pygil /usr/bin/python3 -c 'import threading
def f():
    n = 0
    for i in range(2000000): n += i
t = [threading.Thread(target=f) for _ in range(4)]
[x.start() for x in t]; [x.join() for x in t]'
line=$(lockline pygil)
expect_eq "(GIL) beside GIL waits: $line" "$([[ $line == *"(GIL)"* ]] && echo yes || echo no)" yes

# A shell waiting 0.5 s for its two children in turn: join wait, like pthread_join, not a waiting thread of its own.
pp shwait sh -c 'sleep 0.3; sleep 0.2; true'
expect_near "the shell's child wait" "$(q "$T/shwait.json" '[t["join_wait_seconds"] for p in r["processes"] if p["argv"][:1] == ["sh"] for t in p["threads"]][0]')" 0.5 0.15 0.05
# dash's `wait` builtin suspends until SIGCHLD (sigsuspend), never calling a blocking wait*: a join all the same.
if command -v dash >/dev/null; then
  pp dashwait dash -c 'sleep 0.4 & wait'
  expect_near "dash waiting in sigsuspend for its child" "$(q "$T/dashwait.json" '[t["join_wait_seconds"] for p in r["processes"] if p["argv"][:1] == ["dash"] for t in p["threads"]][0]')" 0.4 0.15 0.05
else
  echo "note: no dash here: its sigsuspend wait not checked"
fi
# A WNOHANG poll does not block and is not timed: 20 polls 10 ms apart (~0.22 s), then a blocking wait for the rest of the child's 0.6 s.
pp pollwait /usr/bin/python3 -c 'import os, subprocess, time
p = subprocess.Popen(["sleep", "0.6"])
for _ in range(20):
    os.waitpid(p.pid, os.WNOHANG); time.sleep(0.01)
p.wait()'
expect_near "a blocking wait after WNOHANG polls" "$(q "$T/pollwait.json" '[t["join_wait_seconds"] for p in r["processes"] if p["python"] for t in p["threads"]][0]')" 0.38 0.3 0.08

# A pipeline: a producer computing 0.6 s, its forked consumer blocked in fread on the pipe the whole
# time (libc's own read, which no preload sees: the sampler saw it on the tree's pipe). The wait
# is IPC, and idle: the pipeline is the producer's computation, cpu-bound, not "mixed".
pp stdiopipe "$FIXTURES/stdio_pipe"
expect_eq "stdio_pipe exit" "$rc" 0
expect_near "the consumer's pipe wait" "$(q "$T/stdiopipe.json" '[t["ipc_seconds"] for p in r["processes"] if p["pid"] != r["processes"][0]["pid"] for t in p["threads"]][0]')" 0.6 0.3 0.1
expect_eq "the pipeline's class" "$(q "$T/stdiopipe.json" 'r["overall"]["class"]')" cpu-bound
finish
