#!/usr/bin/env bash
# test_sweep.sh: poolprof sweep on a fixture with known scaling: speedups, the Amdahl fit, {workers} and POOLPROF_WORKERS, a command without {workers} refused unless --force, {model} given the verdict's model, a verdict count far above the sweep not timed, usage errors, failing and stopped runs, the profile step, and with --keep the sweep in the kept profile run (sweep.json, its report.json and report.html, poolprof report again, a sweep.json the report cannot use).
. "$(dirname "$0")/lib.sh"

# sw NAME ARGS...: poolprof sweep ARGS; stdout in $T/NAME.out, stderr in $T/NAME.err; sets $rc
sw() {
  local name=$1; shift
  timeout 120 "$POOLPROF" sweep "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}
lines() { wc -l <"$1" | tr -d ' '; }
absent() { [[ -e $1 ]] && echo present || echo absent; }
# Processes whose command line contains a marker: a killed sweep must leave none behind.
running() { ps -eo args= | grep -F -e "$1" | grep -vc -F -e grep; }

# Known scaling: 24 units of 25 ms sleep over N threads, 600/N ms.
sw scale --workers 1,2,4 --repeat 3 --no-profile --json "$T/scale.json" -- "$FIXTURES/sweep_sleep" '{workers}'
expect_eq "sweep exits 0" "$rc" 0
expect_eq "schema" "$(q "$T/scale.json" 'r["schema"]')" poolprof.sweep/1
expect_eq "counts in order" "$(q "$T/scale.json" '[p["workers"] for p in r["points"]]')" "[1, 2, 4]"
expect_eq "every run recorded" "$(q "$T/scale.json" '[len(p["wall_seconds"]) for p in r["points"]]')" "[3, 3, 3]"
expect_near "wall at 1 worker (s)" "$(q "$T/scale.json" 'r["points"][0]["median_seconds"]')" 0.6 0.25 0.05
expect_near "speedup at 2" "$(q "$T/scale.json" 'r["points"][1]["speedup"]')" 2 0.15 0.2
expect_near "speedup at 4" "$(q "$T/scale.json" 'r["points"][2]["speedup"]')" 4 0.15 0.2
expect_true "efficiency = speedup / N" "$(q "$T/scale.json" 'all(abs(p["efficiency"] - p["speedup"] / p["workers"]) < 1e-9 for p in r["points"])')"
expect_true "Amdahl serial fraction < 0.1" "$(q "$T/scale.json" 'r["amdahl"]["serial_fraction"] < 0.1')"
expect_true "USL sigma, kappa >= 0" "$(q "$T/scale.json" 'r["usl"]["sigma"] >= 0 and r["usl"]["kappa"] >= 0')"
expect_true "best is 4 workers" "$(q "$T/scale.json" 'r["best"]["workers"] == 4')"
expect_eq "no recommendation with --no-profile" "$(q "$T/scale.json" 'r["recommendation"]')" null
expect_eq "no predicted speedups without a profile" "$(q "$T/scale.json" '[p["predicted_speedup"] for p in r["points"]]')" "[null, null, null]"
expect_true "terminal table" "$(grep -q '^workers  median s' "$T/scale.out" && grep -q '^Amdahl fit: serial fraction' "$T/scale.out" && grep -q '^measured best: 4 workers' "$T/scale.out" && echo true)"
expect_eq "nothing on stderr" "$(cat "$T/scale.err")" ""

# {workers} in any argument (alone, inside a longer one, twice) and POOLPROF_WORKERS in the environment.
sw subst --workers 2,3 --repeat 2 --no-profile -- sh -c 'echo "$POOLPROF_WORKERS $1 $2 $3" >>"$0"' "$T/subst.txt" '{workers}' '--n={workers}' 'x{workers}y{workers}'
expect_eq "substitution sweep exits 0" "$rc" 0
expect_eq "each count, every repeat" "$(sort "$T/subst.txt" | tr '\n' '|')" "2 2 --n=2 x2y2|2 2 --n=2 x2y2|3 3 --n=3 x3y3|3 3 --n=3 x3y3|"

# --keep: each run's output under its count and repeat.
sw keep --workers 1,2 --repeat 1 --no-profile --keep "$T/keep" -- "$FIXTURES/sweep_sleep" '{workers}'
expect_eq "keep sweep exits 0" "$rc" 0
expect_eq "kept stdout" "$(cat "$T/keep/w2-r1.out" 2>&1)" "slept 24 units of 25 ms over 2 threads"
expect_eq "kept stderr" "$(test -f "$T/keep/w1-r1.err" && echo yes)" yes
expect_eq "--keep --no-profile: no profile run, so no sweep.json" "$(absent "$T/keep/profile-run")" absent

# Usage errors: exit 2, one line on stderr.
for bad in 0 a 2,2 "" 1,,2 -1 1.5; do
  sw bad --workers "$bad" -- true
  expect_eq "--workers '$bad' exits 2" "$rc" 2
  expect_eq "--workers '$bad': one line" "$(lines "$T/bad.err")" 1
done
sw many --workers "$(seq -s, 1 33)" -- true
expect_eq "33 counts exit 2" "$rc" 2
expect_true "33 counts: says at most 32" "$(grep -q 'at most 32' "$T/many.err" && echo true)"
sw nocmd --workers 1,2
expect_eq "no command exits 2" "$rc" 2
expect_eq "no command: one line" "$(lines "$T/nocmd.err")" 1
sw noworkers -- true
expect_eq "no --workers exits 2" "$rc" 2
sw both --workers 1 --no-profile --profile-at 2 -- true
expect_eq "--no-profile with --profile-at exits 2" "$rc" 2
sw modelonly --workers 1,2 --model threads -- "$FIXTURES/sweep_sleep" '{workers}'
expect_eq "--model without {model} in the command: exit 2" "$rc" 2
expect_true "--model without {model}: one line saying so" "$([[ $(lines "$T/modelonly.err") == 1 ]] && grep -q '^poolprof: sweep: --model threads: the command has no {model}' "$T/modelonly.err" && echo true)"
sw modelnop --workers 1,2 --no-profile -- sh -c 'touch "$0"' "$T/ran-modelnop" '{model}' '{workers}'
expect_eq "{model} with --no-profile and no --model: exit 2" "$rc" 2
expect_true "{model} with --no-profile and no --model: one line naming --model" "$([[ $(lines "$T/modelnop.err") == 1 ]] && grep -q 'give --model NAME$' "$T/modelnop.err" && echo true)"
expect_eq "{model} with --no-profile and no --model: nothing started" "$(absent "$T/ran-modelnop")" absent
sw notfound --workers 1 --no-profile -- /nonexistent/poolprof-sweep-cmd '{workers}'
expect_eq "missing command exits 127" "$rc" 127

# No {workers} in any argument: every count would run the same command line, so the sweep is refused before
# anything runs (no profile run, no temporary directory, no --keep directory, the command not started).
mkdir -p "$T/tmp-noph"
TMPDIR="$T/tmp-noph" sw noph --workers 1,2 --repeat 1 --keep "$T/keep-noph" -- sh -c 'touch "$0"' "$T/ran-noph"
expect_eq "no {workers}: exit 2" "$rc" 2
expect_eq "no {workers}: one line" "$(lines "$T/noph.err")" 1
expect_true "no {workers}: says so, names --force and POOLPROF_WORKERS" "$(grep -q '^poolprof: sweep: no {workers} in the command: .*--force if it reads POOLPROF_WORKERS$' "$T/noph.err" && echo true)"
expect_eq "no {workers}: the command was not started" "$(absent "$T/ran-noph")" absent
expect_eq "no {workers}: no temporary profile directory" "$(ls -A "$T/tmp-noph")" ""
expect_eq "no {workers}: no --keep directory" "$(absent "$T/keep-noph")" absent
expect_eq "no {workers}: nothing on stdout" "$(cat "$T/noph.out")" ""
sw issue --workers 1,2 -- sleep 0.2
expect_eq "the issue's 'sweep --workers 1,2 -- sleep 0.2': exit 2" "$rc" 2
expect_true "the issue's command: refused at once, no profile line" "$([[ $(lines "$T/issue.err") == 1 && ! -s $T/issue.out ]] && echo true)"

# --force: the count reaches the command through POOLPROF_WORKERS alone, and the output says so.
sw forced --workers 1,2 --repeat 2 --no-profile --force --json "$T/forced.json" -- sh -c 'echo "$POOLPROF_WORKERS" >>"$0"; sleep 0.2' "$T/forced.txt"
expect_eq "--force: exit 0" "$rc" 0
expect_eq "--force: each count, every repeat, through POOLPROF_WORKERS" "$(sort "$T/forced.txt" | tr '\n' ' ')" "1 1 2 2 "
expect_true "--force: the output says the count went through POOLPROF_WORKERS only" "$(grep -qx -- '--force: no {workers} in the command; the count reaches it only through POOLPROF_WORKERS' "$T/forced.out" && echo true)"
expect_eq "--force: workers_in_command" "$(q "$T/forced.json" 'r["workers_in_command"]')" false
expect_near "--force: wall at 1 worker (s)" "$(q "$T/forced.json" 'r["points"][0]["median_seconds"]')" 0.2 0.5 0.1
expect_eq "{workers} given: workers_in_command" "$(q "$T/scale.json" 'r["workers_in_command"]')" true

# A failing run stops the sweep: exit 1, one line naming the count, the repeat and the status.
sw fail --workers 1,2 --repeat 2 --no-profile --force -- "$FIXTURES/exit_with" code 3
expect_eq "failing command: exit 1" "$rc" 1
expect_eq "failing command: one line" "$(lines "$T/fail.err")" 1
expect_true "names the status, count and repeat" "$(grep -q 'exit status 3' "$T/fail.err" && grep -Eq 'at [12] workers? \(repeat 1 of 2\)' "$T/fail.err" && echo true)"
sw killed --workers 1 --repeat 1 --no-profile --force -- "$FIXTURES/exit_with" signal 9
expect_eq "killed command: exit 1" "$rc" 1
expect_true "names the signal" "$(grep -q 'killed by signal 9' "$T/killed.err" && echo true)"

# --timeout kills the run's whole process group.
start=$(date +%s.%N)
sw slow --workers 1 --repeat 1 --no-profile --timeout 0.5 -- sh -c 'sleep 7.31 & sleep 7.31; wait' '{workers}'
took=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
expect_eq "timeout: exit 1" "$rc" 1
expect_true "timeout: says so" "$(grep -q 'timed out after 0.5 s' "$T/slow.err" && echo true)"
sleep 0.2
expect_true "timeout: stopped within 3 s (took $took)" "$(python3 -c "import sys; print('true' if float(sys.argv[1]) < 3 else 'false')" "$took")"
expect_eq "timeout: nothing left running" "$(running 'sleep 7.31')" 0

# SIGTERM during a sweep: the command's process group is killed, exit 143, one line.
# (Not SIGINT: a non-interactive shell starts background jobs with SIGINT ignored, and sweep leaves ignored signals alone.)
timeout 60 "$POOLPROF" sweep --workers 1,2 --repeat 5 --no-profile -- sh -c 'sleep 8.42 & sleep 8.42; wait' '{workers}' >"$T/term.out" 2>"$T/term.err" &
spid=$!
sleep 0.7
kill -TERM "$spid"
wait "$spid"
rc=$?
expect_eq "SIGTERM: exit 143" "$rc" 143
expect_eq "SIGTERM: one line" "$(lines "$T/term.err")" 1
expect_true "SIGTERM: says so" "$(grep -q 'stopped by SIGTERM' "$T/term.err" && echo true)"
sleep 0.2
expect_eq "SIGTERM: nothing left running" "$(running 'sleep 8.42')" 0

# The profile step: poolprof run once; its recommendation joins the sweep only when it is at most 64 (4 x the
# largest count, at least 64). The fixture's verdict varies (threads x 256, async x hundreds): timed or not,
# the JSON and the line must agree with what ran.
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" sw prof --workers 1,2 --repeat 1 --json "$T/prof.json" -- "$FIXTURES/sweep_sleep" '{workers}'
expect_eq "profiled sweep exits 0" "$rc" 0
if [[ $rc -ne 0 ]]; then cat "$T/prof.err"; fi
expect_true "recommendation.workers is an integer >= 1" "$(q "$T/prof.json" 'isinstance(r["recommendation"]["workers"], int) and r["recommendation"]["workers"] >= 1')"
expect_true "the recommended count was timed exactly when it is a point, and when within 64" "$(q "$T/prof.json" 'r["verdict_check"]["workers_timed"] == (r["recommendation"]["workers"] in [p["workers"] for p in r["points"]]) == (r["recommendation"]["workers"] <= 64)')"
expect_eq "recommendation stage" "$(q "$T/prof.json" 'r["recommendation"]["stage"]')" overall
expect_true "throughput_vs_best in (0, 1], or null when the count was not timed" "$(q "$T/prof.json" '0 < r["recommendation"]["throughput_vs_best"] <= 1 if r["verdict_check"]["workers_timed"] else r["recommendation"]["throughput_vs_best"] is None')"
expect_true "terminal says profiled" "$(grep -q 'profiled at 1 worker$' "$T/prof.out" && grep -q 'poolprof run recommended' "$T/prof.out" && echo true)"
# No {model}: only the program as written was timed, so the verdict's model is "not measured" and never "within 10%".
expect_eq "no {model}: verdict_check.model_timed" "$(q "$T/prof.json" 'r["verdict_check"]["model_timed"]')" false
expect_eq "no {model}: timed_model" "$(q "$T/prof.json" 'r["timed_model"]')" null
expect_eq "no {model}: the recommendation is not said within 10%" "$(q "$T/prof.json" 'r["recommendation"]["within_10_percent"]')" null
expect_true "no {model}: verdict_check.within_10_percent agrees with the count's throughput" "$(q "$T/prof.json" 'r["verdict_check"]["within_10_percent"] == (r["verdict_check"]["throughput_vs_best"] >= 0.9 if r["verdict_check"]["workers_timed"] else None)')"
expect_true "no {model}: the line says the model was not measured" "$(grep -q "recommended $(q "$T/prof.json" 'r["recommendation"]["model"]') x [0-9]* (predicted speedup [0-9.]*): $(q "$T/prof.json" 'r["recommendation"]["model"]') not measured (no {model} in the command)" "$T/prof.out" && echo true)"
expect_eq "no {model}: no 'within 10%: yes' for a model not timed" "$(grep -c 'within 10%: yes' "$T/prof.out")" 0

# A verdict within the bound joins the sweep: a CPU-bound native fixture gets threads x the usable CPUs.
sw added --workers 1 --repeat 1 --json "$T/added.json" -- "$FIXTURES/sweep_parallel_cpu" '{workers}' 0.1
expect_eq "verdict within the bound: exit 0" "$rc" 0
aw=$(q "$T/added.json" 'r["recommendation"]["workers"]')
expect_true "precondition: the fixture's verdict ($aw workers) is within 2..64" "$([[ $aw -ge 2 && $aw -le 64 ]] && echo true)"
expect_eq "verdict within the bound: points" "$(q "$T/added.json" '[p["workers"] for p in r["points"]]')" "[1, $aw]"
expect_eq "verdict within the bound: added, timed, bound 64" "$(q "$T/added.json" '[r["recommendation"]["added_to_sweep"]] + [r["verdict_check"][k] for k in ("workers_timed", "workers_limit")]')" "[true, true, 64]"
expect_eq "verdict within the bound: says it was added" "$(grep -cx "added $aw workers to the sweep: poolprof run recommended it and --workers did not list it" "$T/added.out")" 1
expect_true "no {model}: the count compared as written" "$(grep -Eq "; $aw workers timed as written: [0-9.]+ of the best throughput \(count within 10% of the best: (yes|no)\)$" "$T/added.out" && echo true)"

# A verdict far above the swept counts is not timed, and the output says so: the issue's `sleep`, whose count
# reaches nothing (the command records the count it was given, so the test sees every count that ran). 0.5 s of
# sleep over a few ms of CPU: an I/O verdict of hundreds of workers, far above 64 even when start-up is slow.
# 100 separate 10 ms sleeps: up to 100 of them could overlap, so the verdict asks for ~100 threads.
sw huge --workers 1,2 --repeat 2 --force --json "$T/huge.json" -- sh -c 'echo "$POOLPROF_WORKERS" >>"$0"; exec /usr/bin/python3 -c "import time
for _ in range(100): time.sleep(0.01)"' "$T/huge.txt"
expect_eq "huge verdict: exit 0" "$rc" 0
hw=$(q "$T/huge.json" 'r["recommendation"]["workers"]')
expect_true "precondition: the verdict of 100 separate sleeps ($hw workers) is above the bound, 64" "$([[ $hw -gt 64 ]] && echo true)"
expect_eq "huge verdict: only the listed counts ran (the profile at 1, then 1 and 2 twice)" "$(sort -n "$T/huge.txt" | tr '\n' ' ')" "1 1 1 2 2 "
expect_eq "huge verdict: points" "$(q "$T/huge.json" '[p["workers"] for p in r["points"]]')" "[1, 2]"
expect_eq "huge verdict: verdict_check" "$(q "$T/huge.json" '[r["verdict_check"][k] for k in ("workers_timed", "workers_limit", "throughput_vs_best", "within_10_percent", "model_timed")]')" "[false, 64, null, null, false]"
expect_eq "huge verdict: not added, no throughput claimed" "$(q "$T/huge.json" '[r["recommendation"][k] for k in ("added_to_sweep", "throughput_vs_best", "within_10_percent")]')" "[false, null, null]"
expect_eq "huge verdict: one line says it was not timed and why" "$(grep -cx "verdict's $hw workers not timed: above 64, the largest count sweep adds (4 x the largest of --workers, at least 64); list $hw in --workers to time it" "$T/huge.out")" 1
expect_true "huge verdict: the last line claims nothing of it" "$(tail -n 1 "$T/huge.out" | grep -q "not measured (no {model} in the command); $hw workers not timed$" && ! grep -q 'within 10%' "$T/huge.out" && echo true)"
expect_near "huge verdict: wall at 1 worker (s)" "$(q "$T/huge.json" 'r["points"][0]["median_seconds"]')" 1.05 0.25 0.1
expect_near "huge verdict: the count changes nothing (speedup at 2)" "$(q "$T/huge.json" 'r["points"][1]["speedup"]')" 1 0.15 0.15

# {model}: the profile run is given sequential (or --model), every timed run the verdict's model. The command
# records the model and the count it was given, so the test sees which models ran.
sw model --workers 1,2 --repeat 2 --json "$T/model.json" -- sh -c 'echo "$1 $2" >>"$0"; exec "$3" "$2"' "$T/models.txt" '{model}' '{workers}' "$FIXTURES/sweep_sleep"
expect_eq "{model} sweep exits 0" "$rc" 0
if [[ $rc -ne 0 ]]; then cat "$T/model.err"; fi
vmodel=$(q "$T/model.json" 'r["recommendation"]["model"]')
expect_eq "{model}: the profile run was given sequential, once, at 1 worker" "$(grep -c '^sequential ' "$T/models.txt") $(head -n 1 "$T/models.txt")" "1 sequential 1"
expect_eq "{model}: every timed run was given the verdict's model ($vmodel)" "$(tail -n +2 "$T/models.txt" | cut -d' ' -f1 | sort -u)" "$vmodel"
expect_eq "{model}: each swept count, every repeat" "$(tail -n +2 "$T/models.txt" | cut -d' ' -f2 | sort -n | tr '\n' ' ')" "$(q "$T/model.json" '" ".join(str(p["workers"]) for p in r["points"] for _ in range(2))') "
expect_eq "{model}: timed_model" "$(q "$T/model.json" 'r["timed_model"]')" "$vmodel"
expect_eq "{model}: profiled_model" "$(q "$T/model.json" 'r["recommendation"]["profiled_model"]')" sequential
expect_eq "{model}: verdict_check.model, model_timed" "$(q "$T/model.json" '[r["verdict_check"]["model"], r["verdict_check"]["model_timed"]]')" "[\"$vmodel\", true]"
expect_true "{model}: says which model each run got" "$(grep -qx "{model}: $vmodel in every timed run (poolprof run's verdict), sequential in the profile run" "$T/model.out" && echo true)"
expect_true "{model}: the line says it timed the verdict's model" "$(grep -q "recommended $vmodel x [0-9]* (predicted speedup [0-9.]*): timed as $vmodel" "$T/model.out" && echo true)"

# {model} with --no-profile takes --model; the speedup of threads over the fixture's 24 sleeps is known.
sw modelnp --workers 1,2 --repeat 2 --no-profile --model threads --json "$T/modelnp.json" -- sh -c 'echo "$1 $2" >>"$0"; exec "$3" "$2"' "$T/modelnp.txt" '{model}' '{workers}' "$FIXTURES/sweep_sleep"
expect_eq "--no-profile --model threads: exit 0" "$rc" 0
expect_eq "--no-profile --model threads: every run given threads" "$(sort "$T/modelnp.txt" | tr '\n' '|')" "threads 1|threads 1|threads 2|threads 2|"
expect_true "--no-profile --model threads: says so" "$(grep -qx '{model}: threads in every run (--model)' "$T/modelnp.out" && echo true)"
expect_near "--no-profile --model threads: speedup at 2" "$(q "$T/modelnp.json" 'r["points"][1]["speedup"]')" 2 0.15 0.2
expect_eq "--no-profile: verdict_check" "$(q "$T/modelnp.json" 'r["verdict_check"]')" null
expect_eq "no temporary profile directory left" "$(ls -A "$T/tmp")" ""

# --keep keeps the profile run (DIR/profile-run): once the timed runs are done the results go into it as
# sweep.json and its report files are rendered again, so report.json has `sweep` and report.html its table.
sw kept --workers 1,2,4 --repeat 2 --keep "$T/kept" --json "$T/kept.json" -- "$FIXTURES/sweep_sleep" '{workers}'
pr=$T/kept/profile-run
expect_eq "kept profile run: exit 0" "$rc" 0
if [[ $rc -ne 0 ]]; then cat "$T/kept.err"; fi
expect_eq "kept profile run: sweep.json is poolprof.sweep/1" "$(q "$pr/sweep.json" 'r["schema"]')" poolprof.sweep/1
expect_eq "kept profile run: sweep.json is the --json document" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))' "$pr/sweep.json" "$T/kept.json")" True
counts=$(q "$pr/sweep.json" '[p["workers"] for p in r["points"]]')
expect_true "kept profile run: 1, 2, 4 swept, in order ($counts)" "$(q "$pr/sweep.json" '[p["workers"] for p in r["points"] if p["workers"] in (1, 2, 4)] == [1, 2, 4]')"
expect_near "kept profile run: speedup at 2 (the fixture's known scaling)" "$(q "$pr/sweep.json" 'r["points"][1]["speedup"]')" 2 0.15 0.2
# report_sweep RUNDIR: the report's sweep as sweep.json says it (counts, speedups to 4 decimals, the recommendation)
report_sweep() {
  python3 - "$1/report.json" "$1/sweep.json" <<'PY'
import json, sys
r, s = (json.load(open(p)) for p in sys.argv[1:3])
rs = r["sweep"]
ok = [p["workers"] for p in rs["points"]] == [p["workers"] for p in s["points"]]
ok &= all(abs(a["speedup"] - b["speedup"]) < 1e-4 and abs(a["efficiency"] - b["efficiency"]) < 1e-4 and
          abs(a["median_seconds"] - b["median_seconds"]) < 1e-6 for a, b in zip(rs["points"], s["points"]))
ok &= rs["recommended"]["workers"] == s["recommendation"]["workers"]
ok &= rs["recommended"]["measured"] == s["verdict_check"]["workers_timed"]
ok &= rs["best_workers"] == s["best"]["workers"] and rs["amdahl"]["serial_fraction"] == s["amdahl"]["serial_fraction"]
ok &= not any("sweep.json" in n for n in r["measurement"]["notes"])
print("true" if ok else "false: %s" % json.dumps(rs))
PY
}
# html_sweep RUNDIR: report.html's sweep table (counts and speedups) against sweep.json's, as "true" or what differs
html_sweep() {
  python3 - "$1/report.html" "$1/sweep.json" <<'PY'
import json, re, sys
html, s = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
sec = re.search(r'<section id="sweep">.*?</section>', html, re.S)
rows = re.findall(r'<tr data-workers="(\d+)"[^>]*><td>\d+</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', sec.group(0)) if sec else []
want = [(str(p["workers"]), p["speedup"]) for p in s["points"]]
ok = len(rows) == len(want) and all(w == row[0] and abs(float(row[2]) - sp) <= 0.0051 for (w, sp), row in zip(want, rows))
ok &= 'id="sweepcv"' in html
print("true" if ok else "false: %s" % rows)
PY
}
expect_true "report.json: sweep from sweep.json" "$(report_sweep "$pr")"
expect_true "report.html: the sweep table, its counts and speedups" "$(html_sweep "$pr")"
cp "$pr/report.json" "$T/kept-report.json"
"$POOLPROF" report "$pr" >/dev/null 2>"$T/kept-report.err"
expect_eq "poolprof report on the kept profile run: exit 0" "$?" 0
expect_eq "poolprof report: the same sweep" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sweep"] == json.load(open(sys.argv[2]))["sweep"])' "$pr/report.json" "$T/kept-report.json")" True
expect_true "poolprof report: report.json's sweep again" "$(report_sweep "$pr")"
expect_true "poolprof report: report.html's sweep table again" "$(html_sweep "$pr")"
# A sweep.json the report cannot use is ignored, and measurement.notes says so (never silently).
cp -r "$pr" "$T/badsweep"
echo '{"schema": "poolprof.sweep/9", "points": []}' >"$T/badsweep/sweep.json"
"$POOLPROF" report "$T/badsweep" >/dev/null 2>&1
expect_eq "another schema: no sweep" "$(q "$T/badsweep/report.json" 'r["sweep"]')" null
expect_true "another schema: a note says why" "$(q "$T/badsweep/report.json" 'any(n == "sweep.json ignored: its schema is not poolprof.sweep/1 (schema poolprof.sweep/9)" for n in r["measurement"]["notes"])')"
expect_eq "another schema: no sweep section in report.html" "$(grep -c 'id="sweep"' "$T/badsweep/report.html")" 0
printf '{"schema": "poolprof.sweep/1", ' >"$T/badsweep/sweep.json"
"$POOLPROF" report "$T/badsweep" >/dev/null 2>&1
expect_true "not JSON: a note says so" "$(q "$T/badsweep/report.json" 'r["sweep"] is None and any(n.startswith("sweep.json ignored: not JSON") for n in r["measurement"]["notes"])')"
rm "$T/badsweep/sweep.json"
"$POOLPROF" report "$T/badsweep" >/dev/null 2>&1
expect_true "no sweep.json: no sweep, no note" "$(q "$T/badsweep/report.json" 'r["sweep"] is None and not any("sweep.json" in n for n in r["measurement"]["notes"])')"

# An unknown stage: exit 1, one line listing the stages.
sw nostage --workers 1 --repeat 1 --stage no-such-stage -- "$FIXTURES/sweep_sleep" '{workers}'
expect_eq "unknown stage: exit 1" "$rc" 1
expect_eq "unknown stage: one line" "$(lines "$T/nostage.err")" 1
expect_true "unknown stage: lists the stages" "$(grep -q "no stage 'no-such-stage'.*stages: overall" "$T/nostage.err" && echo true)"

finish
