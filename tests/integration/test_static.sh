#!/usr/bin/env bash
# test_static.sh: a statically linked target (the shim cannot load) still runs, keeps its status, and is measured from /proc.
. "$(dirname "$0")/lib.sh"

pp st "$FIXTURES/static_burn"
expect_eq "static target exit status" "$rc" 7
expect_eq "static target output" "$(cat "$T/st.out")" "static done"
R=$T/st.json
expect_eq "report marks the process static" "$(q $R "[p['static'] for p in r['processes']]")" "[true]"
expect_eq "report says the shim did not load" "$(q $R "[p['shim'] for p in r['processes']]")" "[false]"
expect_eq "report says so in its notes" "$(q $R "any('static' in n for n in r['measurement']['notes'])")" true
expect_near "CPU measured from /proc" "$(q $R 'r["overall"]["cpu_seconds"]')" 0.3 0.25 0.06
finish
