#!/usr/bin/env bash
# test_limits.sh: under one CPU of affinity (taskset) or of cgroup quota, usable_cpus is 1 and CPU-bound work is told 1 worker, not the core count.
. "$(dirname "$0")/lib.sh"

PY=${PYTHON:-/usr/bin/python3}
# lib.sh's q calls `python3`: pin it to the same interpreter, not whatever a pyenv shim resolves.
mkdir -p "$T/bin" && ln -sf "$PY" "$T/bin/python3" && PATH=$T/bin:$PATH

# ppw NAME WRAPPER... -- CMD...: like lib.sh's pp, but poolprof itself starts under WRAPPER,
# so the limit covers poolprof, the shim and every process of CMD, as it would for a user.
ppw() {
  local name=$1; shift
  local -a wrap=()
  while [[ $# -gt 0 && $1 != -- ]]; do wrap+=("$1"); shift; done
  shift
  timeout 120 "${wrap[@]}" "$POOLPROF" run -o "$T/$name" --json "$T/$name.json" -- "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}

# one_cpu NAME SEL WHAT: the run saw one usable CPU and sized its CPU-bound stage (Python expression SEL over r) to 1 worker.
one_cpu() {
  local R=$T/$1.json sel=$2 what=$3
  expect_eq "$what: exit" "$rc" 0
  if [[ ! -s $R ]]; then bad "$what: no report ($(tail -n 1 "$T/$1.err"))"; return; fi
  expect_eq "$what: machine.usable_cpus" "$(q "$R" 'r["machine"]["usable_cpus"]')" 1
  # The workers check means something only if the stage really is CPU-bound.
  expect_eq "$what: class" "$(q "$R" "$sel[\"class\"]")" cpu-bound
  expect_eq "$what: recommendation.workers" "$(q "$R" "$sel[\"recommendation\"][\"workers\"]")" 1
  echo "   ($what: model $(q "$R" "$sel[\"recommendation\"][\"model\"]"), cpu_wall_ratio $(q "$R" "round($sel[\"cpu_wall_ratio\"], 2)"))"
}

# ~0.5 s of pure-Python arithmetic in the main thread: CPU-bound, nothing else.
cat >"$T/spin.py" <<'PY'
x = 0
for i in range(4_000_000):
    x = (x * 31 + i) % 1000003
print(x)
PY

# --- affinity: one CPU of the mask we were given (CPU 0 may not be ours) ----------------------
cpu=$("$PY" -c 'import os; print(min(os.sched_getaffinity(0)))')
ppw ts_py taskset -c "$cpu" -- "$PY" "$T/spin.py"
one_cpu ts_py 'r["overall"]' "taskset python"
expect_eq "taskset python: machine.affinity_cpus" "$(q "$T/ts_py.json" 'r["machine"]["affinity_cpus"]')" 1

# Two native threads on one CPU: each runs half the time, yet the stage is CPU-bound (they wait for the CPU, not for I/O).
ppw ts_c taskset -c "$cpu" -- "$FIXTURES/sweep_parallel_cpu" 2 0.3
one_cpu ts_c 'stage(r, "free-worker")' "taskset free-worker"

# A process pool of 2 on one CPU: its dispatcher's idle waits are not I/O, and the verdict is 1 worker.
ppw ts_pool taskset -c "$cpu" -- "$PY" "$SRC/tests/workloads/cpu_primes_procs.py" 2 0.25
one_cpu ts_pool 'r["overall"]' "taskset process pool"
expect_eq "taskset free-worker: machine.affinity_cpus" "$(q "$T/ts_c.json" 'r["machine"]["affinity_cpus"]')" 1

# --- cgroup CPU quota ---------------------------------------------------------------------------
# Where this shell's cpu controller lives, found as machine.c finds it: v1 when a v1 hierarchy
# carries "cpu" (its quota is the one that binds), else v2. Prints "VERSION DIR" or nothing.
read -r cg_version cg_parent < <("$PY" - <<'PY'
import os
v1 = v2 = None
for line in open("/proc/self/cgroup"):
    hid, ctrls, path = line.rstrip("\n").split(":", 2)
    if hid == "0" and ctrls == "":
        v2 = path
    elif "cpu" in ctrls.split(","):
        v1 = path
for line in open("/proc/self/mountinfo"):
    pre, post = line.split(" - ", 1)
    fields, (fstype, _source, sopts) = pre.split(), post.split()[:3]
    root, point = fields[3], fields[4]
    if v1 is not None and fstype == "cgroup" and "cpu" in sopts.split(","):
        path = v1
    elif v1 is None and v2 is not None and fstype == "cgroup2":
        path = v2
    else:
        continue
    # A container may mount only a subtree: our path is then relative to the mount's root.
    if root != "/":
        if not (path == root or path.startswith(root + "/")):
            continue
        path = path[len(root):]
    print(1 if v1 is not None else 2, os.path.normpath(point + "/" + path.lstrip("/")))
    break
PY
)

CG=
enabled_cpu=0
cleanup_cg() {
  [[ -n $CG && -d $CG ]] || return 0
  # Anything of ours still inside (a late-exiting child) goes back to the parent, so rmdir can succeed.
  local p
  for _ in $(seq 50); do
    while read -r p; do echo "$p" >"$cg_parent/cgroup.procs" 2>/dev/null; done <"$CG/cgroup.procs"
    rmdir "$CG" 2>/dev/null && break
    sleep 0.1
  done
  [[ $enabled_cpu == 1 ]] && echo -cpu >"$cg_parent/cgroup.subtree_control" 2>/dev/null
  [[ -d $CG ]] && echo "warning: could not remove $CG"
}
trap 'cleanup_cg; rm -rf "$T"' EXIT

# set_quota US: the cgroup may use US microseconds of CPU per 100 ms period (US / 100000 CPUs).
set_quota() {
  if [[ $cg_version == 1 ]]; then
    echo 100000 >"$CG/cpu.cfs_period_us" && echo "$1" >"$CG/cpu.cfs_quota_us"
  else
    echo "$1 100000" >"$CG/cpu.max"
  fi
} 2>/dev/null

skip=
if [[ -z ${cg_version:-} ]]; then
  skip="no cpu controller mounted (neither a cgroup v1 cpu hierarchy nor cgroup2)"
else
  CG=$cg_parent/poolprof-limits-$$
  if ! mkdir "$CG" 2>/dev/null; then
    skip="cannot create a cgroup under $cg_parent (cgroup v$cg_version, not writable)"
    CG=
  elif [[ $cg_version == 2 && ! -e $CG/cpu.max ]]; then
    # v2 hands the cpu controller to children only when the parent enables it for its subtree.
    if echo +cpu >"$cg_parent/cgroup.subtree_control" 2>/dev/null; then
      enabled_cpu=1
    fi
    [[ -e $CG/cpu.max ]] || skip="cgroup v2 at $cg_parent cannot enable the cpu controller for children"
  fi
  if [[ -z $skip ]] && ! set_quota 100000; then
    skip="cannot set a CPU quota in $CG (cgroup v$cg_version)"
  fi
fi
if [[ -n $skip ]]; then
  echo "SKIP: cgroup quota checks: $skip"
  finish
  exit
fi
echo "cgroup v$cg_version: $CG"

# sh moves itself into the cgroup, then becomes poolprof: the whole run starts inside the quota.
incg=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG")

ppw cg_c "${incg[@]}" -- "$FIXTURES/sweep_parallel_cpu" 2 0.3
one_cpu cg_c 'stage(r, "free-worker")' "quota 1 free-worker"
expect_near "quota 1 free-worker: machine.quota_cpus" "$(q "$T/cg_c.json" 'r["machine"]["quota_cpus"]')" 1 0 0.001

ppw cg_py "${incg[@]}" -- "$PY" "$T/spin.py"
one_cpu cg_py 'r["overall"]' "quota 1 python"
expect_near "quota 1 python: machine.quota_cpus" "$(q "$T/cg_py.json" 'r["machine"]["quota_cpus"]')" 1 0 0.001

# 1.5 CPUs: the quota is read as a fraction, and usable_cpus rounds it up (a second worker still
# gains half a CPU), never past the affinity mask.
if set_quota 150000; then
  ppw cg_frac "${incg[@]}" -- "$FIXTURES/sweep_parallel_cpu" 2 0.1
  R=$T/cg_frac.json
  expect_eq "quota 1.5: exit" "$rc" 0
  expect_near "quota 1.5: machine.quota_cpus" "$(q "$R" 'r["machine"]["quota_cpus"]')" 1.5 0 0.001
  expect_eq "quota 1.5: machine.usable_cpus = min(2, affinity)" "$(q "$R" 'r["machine"]["usable_cpus"]')" \
    "$(q "$R" 'min(2, r["machine"]["affinity_cpus"])')"
  echo "   (quota 1.5 free-worker: $(q "$R" 'stage(r, "free-worker")["recommendation"]["model"]') x $(q "$R" 'stage(r, "free-worker")["recommendation"]["workers"]'))"
else
  bad "quota 1.5: could not set the quota to 150000/100000 in $CG"
fi
finish
