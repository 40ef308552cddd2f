#!/usr/bin/env bash
# test_native_stacks.sh: native stacks of threads whose frames are known, taken by the kernel (perf events, the default: CPU-wide where allowed, per task with POOLPROF_PERF_SCOPE=task) and by ptrace stops (POOLPROF_NATIVE=ptrace), in attach and in run mode, dynamic and static.
. "$(dirname "$0")/lib.sh"

# field REC LETTER KEY: the last value of KEY= on LETTER lines of sampler.rec
field() { awk -v l="$2" -v k="$3=" '$1 == l { for (i = 2; i <= NF; i++) if (index($i, k) == 1) v = substr($i, length(k) + 1) } END { print v }' "$1"; }

# Can this machine open a task-clock sampling event on its own tasks? (perf_event_paranoid 3, seccomp and
# some containers refuse it; poolprof then stops the threads instead, which the ptrace half checks.)
perf_ok=$(python3 - <<'PY'
import ctypes, os, struct
attr = bytearray(128)
struct.pack_into("IIQQQ", attr, 0, 1, 128, 1, 1000000, 0)      # SOFTWARE, size, TASK_CLOCK, period, sample_type
struct.pack_into("Q", attr, 40, (1 << 5) | (1 << 6))            # exclude_kernel | exclude_hv
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(298, ctypes.c_char_p(bytes(attr)), 0, -1, -1, 0)
print(1 if fd >= 0 else 0)
PY
)

# Can it open a CPU-wide one (CAP_PERFMON or perf_event_paranoid <= 0)? Then that is the default layout.
cpu_ok=$(python3 - <<'PY'
import ctypes, struct
attr = bytearray(128)
struct.pack_into("IIQQQ", attr, 0, 1, 128, 0, 1000000, 0)      # SOFTWARE, size, CPU_CLOCK, period, sample_type
struct.pack_into("Q", attr, 40, (1 << 6))                       # exclude_hv
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(298, ctypes.c_char_p(bytes(attr)), -1, 0, -1, 0)
print(1 if fd >= 0 else 0)
PY
)

for mode in perf perf-task ptrace; do
  if [[ $mode == perf* && $perf_ok != 1 ]]; then
    echo "skip: perf events refused on this machine (kernel.perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)): only the ptrace half runs"
    continue
  fi
  envs=()
  [[ $mode == ptrace ]] && envs=(POOLPROF_NATIVE=ptrace)
  [[ $mode == perf-task ]] && envs=(POOLPROF_PERF_SCOPE=task)

  # Attach: main spins in main -> level_a -> level_b -> level_c, a thread blocks in read(2).
  attach_known_stack "a-$mode" "${envs[@]}"
  expect_eq "$mode: attach exit" "$rc" 0
  rec="$T/a-$mode/sampler.rec"
  expect_eq "$mode: stack source in the self-report" "$(field "$rec" O native)" "${mode%-task}"
  scope=none
  [[ $mode == perf-task || ($mode == perf && $cpu_ok != 1) ]] && scope=task
  [[ $mode == perf && $cpu_ok == 1 ]] && scope=cpu
  expect_eq "$mode: perf event layout in the self-report" "$(field "$rec" O perf_scope)" "$scope"
  spin=$(awk '/main;level_a;level_b;level_c /{n += $NF} END {print n + 0}' "$T/a-$mode/stacks.folded")
  # ~1000 ticks in 1 s at 1 kHz on a thread that never stops: most carry the spinning stack.
  expect_true "$mode: spinning stack main;level_a;level_b;level_c in >= 500 samples (got $spin)" "$( ((spin >= 500)) && echo true || echo false)"
  expect_eq "$mode: blocked stack thread_main;blocked_in_read in the off-CPU stacks" \
    "$(grep -c 'thread_main;blocked_in_read' "$T/a-$mode/stacks-offcpu.folded")" 1
  # The reader sits in read(2) for the whole attach: its stack is copied without stopping it.
  peeks=$(field "$rec" H wait_peeks)
  wstops=$(field "$rec" H wait_stops)
  expect_true "$mode: the blocked reader's stack copied without a stop (wait_peeks $peeks, wait_stops $wstops)" \
    "$( ((peeks >= 1 && wstops == 0)) && echo true || echo false)"
  # First decodes of rules are counted apart from the per-frame figure, and only first ones:
  # ~2000 stacks of the same 4-6 frames decode a handful of rules.
  decodes=$(field "$rec" H unwind_decodes)
  expect_true "$mode: rules decoded once per address (got $decodes decodes for $(field "$rec" H unwind_frames) frames)" \
    "$( ((decodes >= 1 && decodes <= 64)) && echo true || echo false)"
  stops=$(field "$rec" H stops)
  if [[ $mode == perf* ]]; then
    # The spinning thread is never stopped; the blocked one once for its (single) wait.
    expect_true "$mode: at most 3 ptrace stops (got $stops)" "$( ((stops <= 3)) && echo true || echo false)"
    expect_true "$mode: kernel samples used (got $(field "$rec" H perf_used))" "$( (($(field "$rec" H perf_used) >= 500)) && echo true || echo false)"
  else
    expect_true "ptrace: the spinning thread stopped for its stacks (got $stops stops)" "$( ((stops >= 500)) && echo true || echo false)"
  fi

  # One call site reached from two callers in turn, 75 waits of 20 ms (tests/fixtures/wait_sites.c):
  # after the first stop at each, a wait's stack is taken without a stop, and only where its
  # return-address slots say who called; each caller must get its half of the waiting.
  env "${envs[@]}" "$POOLPROF" run --no-preload --stacks native --rate 1000 -o "$T/w-$mode" -- "$FIXTURES/wait_sites" 1.5 >/dev/null 2>&1
  f="$T/w-$mode/stacks-offcpu.folded"
  a=$(awk '/waiter;wait_a;wait_one;read;/{n += $NF} END {print n + 0}' "$f")
  b=$(awk '/waiter;wait_b;wait_one;read;/{n += $NF} END {print n + 0}' "$f")
  all=$(awk '/;read;\[/{n += $NF} END {print n + 0}' "$f")
  expect_true "$mode: wait sites: waiting under wait_a ($a us) and wait_b ($b us) each 35-65% of the waiter's read time ($all us)" \
    "$( ((all > 1000000 && a * 100 >= all * 35 && a * 100 <= all * 65 && b * 100 >= all * 35 && b * 100 <= all * 65)) && echo true || echo false)"
  # Stops for a blocked thread's stack only: by ptrace, a thread caught running (the main thread
  # between its sleeps) is stopped by design, and under load that was 6-17 stops more.
  wstops=$(field "$T/w-$mode/sampler.rec" H wait_stops)
  reused=$(field "$T/w-$mode/sampler.rec" H waits_reused)
  expect_true "$mode: wait sites: >= 40 of 75 waits' stacks without a stop (got $reused), <= 12 stops for waits (got $wstops)" \
    "$( ((reused >= 40 && wstops <= 12)) && echo true || echo false)"

  # Run: the events follow a fork and an exec (timeout forks the fixture), dynamic and static.
  for fx in known_stack static_known_stack; do
    env "${envs[@]}" "$POOLPROF" run --no-preload --stacks native --rate 1000 -o "$T/r-$mode-$fx" -- timeout -s KILL 1 "$FIXTURES/$fx" >/dev/null 2>&1
    spin=$(awk '/main;level_a;level_b;level_c /{n += $NF} END {print n + 0}' "$T/r-$mode-$fx/stacks.folded")
    expect_true "$mode: $fx under run: spinning stack in >= 300 samples (got $spin)" "$( ((spin >= 300)) && echo true || echo false)"
  done

  # CPU split between two functions in turns far shorter than a tick (1 ms and 3 ms): each function's
  # share of the on-CPU samples must match its share of the fixture's own clock. At 1 kHz with kernel
  # copies every copy is unwound at a 100 Hz tick (tick_hz says which way ran).
  env "${envs[@]}" "$POOLPROF" run --no-preload --stacks native --rate 1000 -o "$T/s-$mode" -- "$FIXTURES/cpu_split" 1.5 >"$T/s-$mode.out" 2>&1
  small=$(awk '/;split_small /{n += $NF} END {print n + 0}' "$T/s-$mode/stacks.folded")
  large=$(awk '/;split_large /{n += $NF} END {print n + 0}' "$T/s-$mode/stacks.folded")
  want=$(awk '$1 == "split" { split($2, a, "="); split($3, b, "="); print a[2] / (a[2] + b[2]) }' "$T/s-$mode.out")
  got=$(python3 -c "print(round($small / max($small + $large, 1), 4))")
  expect_near "$mode: cpu split: split_small's share of samples ($small of $((small + large)), tick $(field "$T/s-$mode/sampler.rec" O tick_hz) Hz)" \
    "$got" "${want:-0.25}" 0.15 0.05
  expect_true "$mode: cpu split: >= 600 samples in the two functions (got $((small + large)))" \
    "$( ((small + large >= 600)) && echo true || echo false)"
done
finish
