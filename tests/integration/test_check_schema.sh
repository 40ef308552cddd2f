#!/usr/bin/env bash
# test_check_schema.sh: the check documents of tests/data/check validate against the check schema the build puts beside poolprof (build/check.schema.json), and documents that break it do not.
. "$(dirname "$0")/lib.sh"

# Debian's python3 with its python3-jsonschema (scripts/setup.sh installs it).
PY=/usr/bin/python3
if ! "$PY" -c 'import jsonschema' 2>/dev/null; then
  bad "python3-jsonschema is not installed (scripts/setup.sh installs it)"
  finish
fi
SCHEMA="$(dirname "$POOLPROF")/check.schema.json"

# check FILE: FILE against the schema, every violation listed; exits 1 if any
check() {
  "$PY" - "$SCHEMA" "$1" <<'PY'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
jsonschema.Draft202012Validator.check_schema(schema)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors[:10]:
    print("/".join(map(str, e.absolute_path)) or "(root)", ":", e.message[:200])
sys.exit(1 if errors else 0)
PY
}

for f in "$SRC"/tests/data/check/*.json; do
  if out=$(check "$f"); then ok "$(basename "$f"): matches the check schema"; else bad "$(basename "$f"): $out"; fi
done

# broken NAME PYEXPR: the regression fixture changed by PYEXPR (on d) must not validate
broken() {
  "$PY" - "$SRC/tests/data/check/regression.json" "$T/$1.json" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
PY
  if check "$T/$1.json" >/dev/null; then bad "$1: the schema accepts it"; else ok "$1: the schema rejects it"; fi
}
broken unknown_result 'd["checks"][0]["result"] = "failed"'
broken unknown_field 'd["checks"][0]["extra"] = 1'
broken short_interval 'd["checks"][0]["interval"] = [1.2]'
broken no_counts 'del d["counts"]'
broken bad_mode 'd["mode"] = "nightly"'
finish
