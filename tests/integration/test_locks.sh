#!/usr/bin/env bash
# test_locks.sh: the lock table against fixtures whose locks are known: processes[].locks[] (site, waits, wait, owner changes) and the rows the HTML and Markdown reports show for it.
. "$(dirname "$0")/lib.sh"

# row RUN: the report's first lock of its first process, the HTML lock sites table and the Markdown
# lock sites table, checked against each other: the same site, waits, wait and owner changes.
rows() {
  python3 - "$T/$1.json" "$T/$1/report.html" "$T/$1/report.md" <<'PY'
import html, json, re, sys
r = json.load(open(sys.argv[1]))
page = open(sys.argv[2], encoding="utf-8").read()
md = open(sys.argv[3], encoding="utf-8").read()
p = [p for p in r["processes"] if p["locks"]][0]
l = p["locks"][0]
out = []
# HTML: the lock-sites table's rows, cell texts with tags stripped.
m = re.search(r'<table class="lock-sites">(.*?)</table>', page, re.S)
cells = [[html.unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
         for tr in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)] if m else []
want = [str(p["pid"]), l["site"].split()[0], l["kind"], "%d" % l["contended"], "%.3f" % l["wait_seconds"],
        "%d" % l["owner_changes"]]
got = [[c[0][0], c[1][0], c[2][0], c[3][0], c[4][0], c[6][0]] for c in cells if len(c) == 7 and all(c)]
out.append("html=%s" % (want in got))
# Markdown: the Lock sites table's row for it (the renderer escapes '_' in the site).
sec = md.split("### Lock sites", 1)
mdrow = [ln for ln in (sec[1].split("\n\n")[1].splitlines() if len(sec) == 2 else [])
         if ln.startswith("| %d " % p["pid"])]
site_md = l["site"].replace("_", "\\_")
ok = any(site_md in ln and ln.split("|")[5].strip() == "%d of %d" % (l["contended"], l["acquisitions"])
         and ln.split("|")[8].strip() == "%d" % l["owner_changes"] for ln in mdrow)
out.append("md=%s" % ok)
print(" ".join(out))
PY
}

# lock_hold: "holder" takes the mutex, then "waiter" blocks on it for the 300 ms holder sleeps:
# one contended acquisition, ~0.3 s of wait. Owner changes: the shim watches a lock from its first
# contention on, and holder's take came before it (uncontended, not watched), so the hand-off
# holder -> waiter is not one it can count: the lower bound from the code is 0.
pp lock "$FIXTURES/lock_hold"
expect_eq "lock_hold: poolprof exit" "$rc" 0
L='[l for p in r["processes"] for l in p["locks"]]'
expect_eq "lock_hold: lock sites" "$(q "$T/lock.json" "len($L)")" 1
expect_true "lock_hold: the site is waiter()'s" "$(q "$T/lock.json" "str($L[0]['site'].startswith('waiter+')).lower()")"
expect_eq "lock_hold: kind" "$(q "$T/lock.json" "$L[0]['kind']")" mutex
expect_eq "lock_hold: waits" "$(q "$T/lock.json" "$L[0]['contended']")" 1
expect_near "lock_hold: wait seconds" "$(q "$T/lock.json" "$L[0]['wait_seconds']")" 0.300 0.15 0.03
expect_true "lock_hold: owner changes >= 0" "$(q "$T/lock.json" "str($L[0]['owner_changes'] >= 0).lower()")"
expect_true "lock_hold: hold of waiter's own take (lock, unlock) < 50 ms" \
  "$(q "$T/lock.json" "str($L[0]['hold_seconds'] < 0.05).lower()")"
expect_eq "lock_hold: lock.hottest.owner_changes is the site's" \
  "$(q "$T/lock.json" "r['overall']['lock']['hottest']['owner_changes'] == $L[0]['owner_changes']")" true
expect_eq "lock_hold: HTML and Markdown rows" "$(rows lock)" "html=True md=True"

# lock_pingpong: 10 rounds, the holder alternating; the other blocks ~20 ms each round. The shim
# watches from round 0's contended take on, so the owners it sees are B, B A, A B, ...: 9 changes,
# one a round after the first; at most acquisitions - 1 (every take a change).
pp ping "$FIXTURES/lock_pingpong"
expect_eq "lock_pingpong: poolprof exit" "$rc" 0
expect_eq "lock_pingpong: lock sites" "$(q "$T/ping.json" "len($L)")" 1
n=$(q "$T/ping.json" "$L[0]['contended']")
expect_true "lock_pingpong: waits 8..10 (10 unless a waiter came 20 ms late)" "$( ((n >= 8 && n <= 10)) && echo true)"
expect_near "lock_pingpong: wait seconds, 20 ms a wait" "$(q "$T/ping.json" "$L[0]['wait_seconds']")" \
  "$(python3 -c "print($n * 0.020)")" 0.2 0.03
expect_true "lock_pingpong: owner changes >= 9 (one a round after the first)" \
  "$(q "$T/ping.json" "str($L[0]['owner_changes'] >= 9).lower()")"
expect_true "lock_pingpong: owner changes < acquisitions" \
  "$(q "$T/ping.json" "str($L[0]['owner_changes'] < $L[0]['acquisitions']).lower()")"
expect_eq "lock_pingpong: HTML and Markdown rows" "$(rows ping)" "html=True md=True"
oc=$(q "$T/ping.json" "$L[0]['owner_changes']")
if grep -q "player+[^<]*</div></td><td>mutex</td>.*<td>$oc</td></tr>" "$T/ping/report.html"; then
  ok "lock_pingpong: report.html's row for player() ends with its $oc owner changes"
else
  bad "lock_pingpong: no row for player() with $oc owner changes in report.html"
fi

# The page as a browser shows it, when the test tools are installed (scripts/setup.sh).
tools=$SRC/tests/browser/html
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ -x $chromium && -d $tools/node_modules/playwright-core ]] && command -v node >/dev/null; then
  CHROMIUM=$chromium node "$tools/check_page.js" "$T/ping/report.html" "" >"$T/ping.dom.json" 2>"$T/ping.dom.err"
  expect_eq "chromium opened the page" "$?" 0
  expect_eq "lock_pingpong: the page's lock sites row" "$(python3 - "$T/ping.json" "$T/ping.dom.json" <<'PY'
import json, sys
r, d = (json.load(open(a)) for a in sys.argv[1:3])
l = [l for p in r["processes"] for l in p["locks"]][0]
rows = d.get("lock_sites", [])
print(len(rows) == 1 and l["site"] in rows[0][1] and rows[0][6] == str(l["owner_changes"])
      and d["nojs"]["lock_sites"] == 1)
PY
)" True
else
  echo "skip: the page in Chromium (needs $chromium, node and $tools/node_modules)"
fi
finish
