#!/usr/bin/env bash
# test_html.sh: the HTML report in headless Chromium: a lane for every thread, the verdict cards of report.json, no request beyond the file, no console error or CSP violation, hostile thread names, argv and counter names shown as text, the perf counters per stage and per thread as report.json has them, and the sweep table and curve of a run `poolprof sweep --keep` profiled.
. "$(dirname "$0")/lib.sh"
tools=$SRC/tests/browser/html
chromium=${CHROMIUM:-/usr/bin/chromium}
# Test tools come from scripts/setup.sh (Debian's chromium, npm ci in tests/browser/html): say so, do not fail.
if [[ ! -x $chromium || ! -d $tools/node_modules/playwright-core ]] || ! command -v node >/dev/null; then
  echo "skip: needs $chromium, node and $tools/node_modules (scripts/setup.sh installs them)"
  exit 77
fi
art=${ARTIFACTS:-$(dirname "$POOLPROF")/test-artifacts}
mkdir -p "$art"

# page HTML PNG: what the page's DOM shows (tests/browser/html/check_page.js), as JSON in $T/HTML.dom.json
page() {
  CHROMIUM=$chromium node "$tools/check_page.js" "$1" "$2" >"$1.dom.json" 2>"$1.dom.err"
  local rc=$?
  expect_eq "chromium opened $(basename "$1")" "$rc" 0
  [[ $rc -eq 0 ]] || sed 's/^/  /' "$1.dom.err"
}

# dom REPORT.json HTML.dom.json PYEXPR: evaluate over the report (r) and the page's DOM (d); vis(s) is how the page shows s
dom() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
def vis(s):
    return "".join(chr(0x2421) if c == "\x7f" else chr(0x2400 + ord(c)) if ord(c) < 0x20 else c for c in s)
stages = [r["overall"]] + r["stages"]
v = eval(sys.argv[3])
print(json.dumps(v) if not isinstance(v, str) else v)
PY
}

# pph NAME CMD...: pp, with the page also written by --format html=$T/NAME.html; the options in the array
# pph_opts (none unless set) go to poolprof run too
pph_opts=()
pph() {
  local name=$1; shift
  "$POOLPROF" run "${pph_opts[@]}" -o "$T/$name" --json "$T/$name.json" --format html="$T/$name.html" -- "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}

# Checks every page must pass, whatever the target. (A name that is not UTF-8, the hostile fixture's third
# thread's, reaches report.json and the page with U+FFFD for its stray byte.)
common() {
  local json=$1 html=$2 d=$2.dom.json
  expect_eq "$3: the only request is the file itself" "$(dom "$json" "$d" 'd["requests"]')" "[\"file://$html\"]"
  expect_eq "$3: no console error or warning" "$(dom "$json" "$d" 'd["console_errors"] + d["page_errors"]')" "[]"
  expect_eq "$3: no CSP violation" "$(dom "$json" "$d" 'd["csp"]')" "[]"
  expect_eq "$3: the script ran to its end" "$(dom "$json" "$d" 'd["drawn"]')" 1
  expect_eq "$3: the page's two script elements only" "$(dom "$json" "$d" 'd["scripts"]')" '["application/json", "classic"]'
  expect_eq "$3: a lane for every thread of report.json" \
    "$(dom "$json" "$d" 'sorted((t["tid"], p["pid"]) for p in r["processes"] for t in p["threads"]) == sorted((l["tid"], l["pid"]) for l in d["lanes"])')" true
  expect_eq "$3: every lane drawn" "$(dom "$json" "$d" 'all(l["drawn"] for l in d["lanes"])')" true
  expect_eq "$3: a verdict card per stage, overall first" \
    "$(dom "$json" "$d" '[vis(s["name"]) for s in stages] == [c["stage"] for c in d["cards"]]')" true
  expect_eq "$3: each card's model x workers is its stage's recommendation" \
    "$(dom "$json" "$d" 'all((c["model"], c["workers"], c["shown_model"], c["shown_workers"]) == (s["recommendation"]["model"], s["recommendation"]["workers"]) * 2 for c, s in zip(d["cards"], stages))')" true
  expect_eq "$3: without script, the cards and lanes are there" \
    "$(dom "$json" "$d" '(d["nojs"]["cards"], d["nojs"]["lanes"]) == (len(stages), len(d["lanes"]))')" true
  expect_true "$3: under 5 MB" "$(python3 -c "import os,sys; print('true' if os.path.getsize(sys.argv[1]) < 5e6 else 'false')" "$html")"
}

# A known multi-process, multi-thread workload: a process pool (its parent's feeder and manager threads)
# under the real interpreter, not a launcher's shim.
py=$(python3 -c 'import sys; print(sys.executable)')
pph pool "$py" "$SRC/tests/workloads/cpu_primes_procs.py" 2 0.2
expect_eq "pool: exit" "$rc" 0
expect_true "report.html left in the run directory too" "$([[ -s $T/pool/report.html ]] && echo true)"
page "$T/pool.html" "$art/report.png"
common "$T/pool.json" "$T/pool.html" pool
expect_true "pool: several processes and threads" "$(q "$T/pool.json" 'len(r["processes"]) >= 3 and sum(len(p["threads"]) for p in r["processes"]) >= 5 and "true" or "false"')"
expect_true "pool: both flame graphs drawn" "$(dom "$T/pool.json" "$T/pool.html.dom.json" 'all(h > 40 for h in d["flames"]) and "true" or "false"')"
expect_eq "pool: the search box says what matched" "$(dom "$T/pool.json" "$T/pool.html.dom.json" 'd["search"].startswith("matched: ")')" true
expect_true "screenshot saved: $art/report.png" "$([[ -s $art/report.png ]] && echo true)"

# The bundled two-stage pipeline (a fetch thread on a local HTTP server, a transform thread): the
# page README shows. Its lanes come from recorded timelines, not shares: the sampler's S lines.
pph demo "$py" "$SRC/demo/pipeline.py"
expect_eq "demo: exit" "$rc" 0
page "$T/demo.html" "$art/report-demo.png"
common "$T/demo.json" "$T/demo.html" demo
expect_eq "demo: a card for fetch and one for transform" \
  "$(dom "$T/demo.json" "$T/demo.html.dom.json" 'sorted(c["stage"] for c in d["cards"] if c["stage"] in ("fetch", "transform"))')" '["fetch", "transform"]'
expect_eq "demo: the stages' threads drawn from recorded timelines" "$("$py" - "$T/demo.html" <<'PY'
import json, re, sys
d = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', open(sys.argv[1]).read(), re.S).group(1))
print(str(sum(1 for l in d["lanes"] if not l["approx"] and l["s"]) >= 2).lower())
PY
)" true

# A target whose names and argv would be markup, quotes and terminal escapes if not escaped.
esc=$'\e[31mred\e[0m'
# A counter name is the user's string too: asked for, it is listed with libpfm4's reason for not counting it.
hostile_ev='<img src=x onerror="window.__pwned=2">'
pph_opts=(--counters "$hostile_ev")
pph hostile "$FIXTURES/hostile_names" '<script>alert(1)</script>' "\"quoted\" 'single'" "$esc" \
  '<img src=x onerror="window.__pwned=1">'
pph_opts=()
expect_eq "hostile: exit" "$rc" 0
page "$T/hostile.html" "$art/report-hostile.png"
common "$T/hostile.json" "$T/hostile.html" hostile
h=$T/hostile.html.dom.json
for s in '<script>alert(1)</script>' "\"quoted\" 'single'" '␛[31mred␛[0m' '<img src=x onerror="window.__pwned=1">'; do
  expect_eq "hostile: argv shown as text: $s" "$(S="$s" dom "$T/hostile.json" "$h" '__import__("os").environ["S"] in d["text"]')" true
done
expect_eq "hostile: thread names shown as text" \
  "$(dom "$T/hostile.json" "$h" 'sorted(l["name"] for l in d["lanes"])[:2]')" "[\"</script><i>\\\"'\", \"<script>\\\"'\\u241b[31m\"]"
expect_eq "hostile: no script from them ran" "$(dom "$T/hostile.json" "$h" 'd["pwned"]')" undefined
expect_eq "hostile: no element from them" "$(dom "$T/hostile.json" "$h" 'd["imgs"]')" 0
expect_eq "hostile: the counter's name shown as text in its row, with its reason" \
  "$(S="$hostile_ev" dom "$T/hostile.json" "$h" '[e["cells"][-1] for e in d["counter_events"] if e["event"] == __import__("os").environ["S"] and e["cells"][0] == e["event"]] == ["not counted: " + c["reason"] for c in r["measurement"]["counters"] if c["event"] == __import__("os").environ["S"]]')" true
expect_eq "hostile: the title is text" "$(dom "$T/hostile.json" "$h" '"<script>alert(1)</script>" in d["title"]')" true
expect_eq "hostile: the thread name cut inside a character is in report.json, U+FFFD for its stray byte" \
  "$(q "$T/hostile.json" 'any(t["name"].startswith("bad\ufffd") for p in r["processes"] for t in p["threads"])')" true

# Perf counters of a pinned pipe ping-pong (5,000 round trips, parent and child on one CPU: each leaves it once a trip),
# with two events asked for that say why they are not counted: cycles (no PMU on most VMs; counted where there is
# one) and a name libpfm4 does not know (never counted). Every figure the page shows is report.json's.
pph_opts=(--counters cycles,no_such_event)
pph ctr "$FIXTURES/ctr_pingpong" 5000
pph_opts=()
expect_eq "ctr: exit" "$rc" 0
page "$T/ctr.html" "$art/report-counters.png"
common "$T/ctr.json" "$T/ctr.html" ctr
c=$T/ctr.html.dom.json
# n(text): a number as the page shows it ("10,018", "150,410.4"), or None for a dash
N='n = lambda s: float(s.replace(",", "")) if s.strip() not in ("", "\u2014") else None'
CS='perf::CONTEXT-SWITCHES'
expect_true "ctr: the run switched about twice per round trip (the report's own figure)" \
  "$(q "$T/ctr.json" "str(abs([c['value'] for c in r['overall']['counters'] if c['event'] == '$CS'][0] - 10000) <= 300).lower()")"
expect_eq "ctr: the overall card's context switches and per CPU-second are report.json's" \
  "$(dom "$T/ctr.json" "$c" "exec('$N') or [(n(x['cells'][1]), n(x['cells'][2])) for x in d['cards'][0]['counters'] if x['event'] == '$CS'] == [(float(x['value']), x['per_cpu_second']) for x in r['overall']['counters'] if x['event'] == '$CS']")" true
expect_eq "ctr: every card's counters table is its stage's counters, row by row" \
  "$(dom "$T/ctr.json" "$c" "exec('$N') or all((k['counters'] is None) == (s['counters'] is None) and [(x['event'], n(x['cells'][1]), n(x['cells'][2])) for x in k['counters'] or []] == [(x['event'], float(x['value']), x['per_cpu_second']) for x in s['counters'] or []] for k, s in zip(d['cards'], stages))")" true
expect_eq "ctr: each thread's context switches in the Threads table are report.json's" \
  "$(dom "$T/ctr.json" "$c" "exec('$N') or sorted((x['pid'], x['tid'], n(x['cells'][d['counter_threads']['head'].index('$CS')])) for x in d['counter_threads']['rows']) == sorted((p['pid'], t['tid'], float(t['counters']['$CS'])) for p in r['processes'] for t in p['threads'] if t['counters'])")" true
expect_eq "ctr: each thread's lane tooltip has its context switches" \
  "$(dom "$T/ctr.json" "$c" "all(any(('$CS %s' % format(t['counters']['$CS'], ',')) in x for x in d['lane_titles'] if '(tid %d)' % t['tid'] in x) for p in r['processes'] for t in p['threads'] if t['counters'])")" true
expect_eq "ctr: every event listed, each with its reason (or a dash when counted as asked)" \
  "$(dom "$T/ctr.json" "$c" "[(e['event'], e['cells'][-1]) for e in d['counter_events']] == [(x['event'], ('' if x['measured'] else 'not counted' + (': ' if x['reason'] else '')) + (x['reason'] or ('\u2014' if x['measured'] else ''))) for x in r['measurement']['counters']]")" true
expect_eq "ctr: the unknown event says libpfm4 does not know it" \
  "$(dom "$T/ctr.json" "$c" "[e['cells'][-1].startswith('not counted: not supported by libpfm4') for e in d['counter_events'] if e['event'] == 'no_such_event']")" "[true]"
expect_eq "ctr: cycles shown counted, or not counted with report.json's reason" \
  "$(dom "$T/ctr.json" "$c" "[(e['cells'][-1] == 'not counted: ' + x['reason']) if not x['measured'] else (x['reason'] is None or e['cells'][-1] == x['reason']) for e in d['counter_events'] for x in r['measurement']['counters'] if e['event'] == x['event'] == 'cycles']")" "[true]"
expect_eq "ctr: the counters' tables there without script" \
  "$(dom "$T/ctr.json" "$c" "d['nojs']['counter_rows'] == sum(len(s['counters'] or []) for s in stages) + len(r['measurement']['counters'])")" true

# A process that grows for a second: its RSS track carries PSS and USS (smaps_rollup, read every 20th RSS
# sample: at a 5 ms interval, about ten times), none above RSS's peak.
"$POOLPROF" run --interval 5 -o "$T/mem" --format html="$T/mem.html" -- "$py" -c 'import time
x = []
for i in range(40):
    x.append(bytearray(2000000)); time.sleep(0.025)' >"$T/mem.out" 2>"$T/mem.err"
expect_eq "mem: exit" "$?" 0
expect_eq "mem: a track with PSS and USS, each at most its RSS peak" "$("$py" - "$T/mem.html" <<'PY'
import json, re, sys
d = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', open(sys.argv[1]).read(), re.S).group(1))
ok = [t for t in d["rss"] if "mem" in t and len(t["mem"]["t"]) >= 2
      and max(t["mem"]["pss"]) <= max(t["v"]) and max(t["mem"]["uss"]) <= max(t["mem"]["pss"])]
print("true" if ok else "false")
PY
)" true

expect_eq "hostile: no sweep section (the run did not come from sweep)" "$(dom "$T/hostile.json" "$h" 'd["sweep"]')" null

# A run `poolprof sweep --keep` profiled: the sweep's table (HTML from the renderer, there without script too) and
# its curve, drawn with a point per measured speedup.
timeout 120 "$POOLPROF" sweep --workers 1,2,4 --repeat 1 --keep "$T/swept" -- "$FIXTURES/sweep_sleep" '{workers}' >"$T/swept.out" 2>&1
expect_eq "swept: exit" "$?" 0
pr=$T/swept/profile-run
page "$pr/report.html" "$art/report-sweep.png"
common "$pr/report.json" "$pr/report.html" swept
s=$pr/report.html.dom.json
expect_eq "swept: a table row per count, in order" "$(dom "$pr/report.json" "$s" '[int(row[0]) for row in d["sweep"]["rows"]] == [p["workers"] for p in r["sweep"]["points"]]')" true
expect_eq "swept: each row's speedup is the report's" "$(dom "$pr/report.json" "$s" 'all(row[2] == "%.2f" % p["speedup"] for row, p in zip(d["sweep"]["rows"], r["sweep"]["points"]))')" true
expect_eq "swept: the recommended count's row says so" "$(dom "$pr/report.json" "$s" '[int(row[0]) for row in d["sweep"]["rows"] if "recommended" in row[4]] == ([r["sweep"]["recommended"]["workers"]] if r["sweep"]["recommended"]["measured"] else [])')" true
expect_eq "swept: the curve drawn, a point per measured speedup" "$(dom "$pr/report.json" "$s" 'd["sweep"]["drawn"] and d["sweep"]["points"] == len([p for p in r["sweep"]["points"] if p["speedup"] is not None])')" true
expect_eq "swept: the table there without script" "$(dom "$pr/report.json" "$s" 'd["nojs"]["sweep_rows"] == len(r["sweep"]["points"])')" true
finish
