#!/bin/sh
# run.sh: prints the 25 most frequent words of the text pieces with the classic tr | sort | uniq -c pipeline.
# usage: run.sh DATA seq   the pipeline's stages one after another, through files
#        run.sh DATA N     N pipelines at once, each over every Nth piece, their counts merged (N=1: the pipeline as usually typed)
set -eu
data=$1 mode=$2
export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$mode" = seq ]; then
  cat "$data"/pieces/p*.txt > "$tmp/text"
  tr -cs 'A-Za-z' '\n' < "$tmp/text" > "$tmp/words"
  tr 'A-Z' 'a-z' < "$tmp/words" > "$tmp/lower"
  sort --parallel=1 "$tmp/lower" > "$tmp/sorted"
  uniq -c "$tmp/sorted" > "$tmp/counts.0"
else
  n=$mode
  j=0
  while [ $j -lt "$n" ]; do
    files=
    for i in 1 2 3 4 5 6 7 8; do
      [ $(( (i - 1) % n )) -eq $j ] && files="$files $data/pieces/p$i.txt"
    done
    # shellcheck disable=SC2086
    cat $files | tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | sort | uniq -c > "$tmp/counts.$j" &
    j=$((j + 1))
  done
  wait
fi

# Merge the counts (one file or N) and print the top words.
sort -m -k2,2 "$tmp"/counts.* \
  | awk '$2 != w { if (NR > 1) print c, w; w = $2; c = 0 } { c += $1 } END { print c, w }' \
  | sort -k1,1nr -k2,2 | head -25
