#!/usr/bin/env bash
# setup.sh: installs the Debian packages the truth corpus's programs use (the union of every program.json's "debian" list); idempotent, a no-op when all are present.
# usage: bench/corpus/setup.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
updated=

# install PKG...: installs those of PKG not installed yet, quietly, without recommends.
install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "corpus setup: installing ${missing[*]}" >&2
  if [[ -z $updated ]]; then
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install python3  # reads the program.json files below
mapfile -t packages < <(python3 -c '
import glob, json, os, sys
names = set()
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "program.json"))):
    with open(path) as f:
        names.update(json.load(f).get("debian") or [])
print("\n".join(sorted(names)))
' "$here")
install "${packages[@]}"
