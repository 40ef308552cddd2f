#!/bin/sh
# prepare.sh: writes the two million CSV-like records (key, region, amount, tag) that sort-lines sorts, in the data directory $1.
set -eu
awk 'BEGIN {
  srand(5)
  split("north south east west central", region, " ")
  for (i = 0; i < 2000000; i++)
    printf "%s-%07d,%s,%d.%02d,%08x\n", substr("abcdefghijklmnopqrstuvwxyz", 1 + int(rand() * 26), 1 + int(rand() * 3)),
      int(rand() * 10000000), region[1 + int(rand() * 5)], int(rand() * 100000), int(rand() * 100), int(rand() * 2147483647)
}' > "$1/lines.txt"
