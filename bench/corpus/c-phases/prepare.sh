#!/bin/sh
# prepare.sh: writes the records file phases.c reads (id, quantity, base price a line) into the data directory $1.
set -eu
awk 'BEGIN { srand(11); for (i = 0; i < 1500000; i++) printf "%d %d %d\n", i, 1 + int(rand() * 500), 100 + int(rand() * 99900) }' > "$1/records.txt"
