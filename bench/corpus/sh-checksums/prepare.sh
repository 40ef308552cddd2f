#!/bin/sh
# prepare.sh: builds the tree of files that sh-checksums hashes (24 directories of text files of uneven sizes, 384 MiB in all) in the data directory $1.
set -eu
data=$1
src=$data/src.txt
: > "$src"
while [ "$(stat -c %s "$src")" -lt 50331648 ]; do
  find /usr/include -type f -name '*.h' -print0 | LC_ALL=C sort -z | xargs -0 cat >> "$src"
done
rm -rf "$data/tree"
total=0 i=0
while [ $total -lt 402653184 ]; do
  d=$data/tree/d$((i % 24))
  mkdir -p "$d"
  kib=$(( 256 + (i * 7919) % 2048 ))
  dd if="$src" of="$d/f$i.txt" bs=1024 skip=$(( (i * 4099) % 40000 )) count=$kib status=none
  total=$(( total + kib * 1024 )) i=$(( i + 1 ))
done
rm -f "$src"
