#!/bin/sh
# prepare.sh: writes the eight text pieces (3 MiB each, from the system's C headers) that sh-wordfreq counts words in, in the data directory $1.
set -eu
data=$1
src=$data/src.txt
: > "$src"
while [ "$(stat -c %s "$src")" -lt 25165824 ]; do
  find /usr/include -type f -name '*.h' -print0 | LC_ALL=C sort -z | xargs -0 cat >> "$src"
done
rm -rf "$data/pieces"
mkdir -p "$data/pieces"
for i in 1 2 3 4 5 6 7 8; do
  dd if="$src" of="$data/pieces/p$i.txt" bs=1M skip=$(( (i - 1) * 3 )) count=3 status=none
done
rm -f "$src"
