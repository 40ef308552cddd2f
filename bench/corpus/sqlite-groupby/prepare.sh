#!/bin/sh
# prepare.sh: builds the SQLite database of two million rows that sqlite-groupby queries, in the data directory $1.
set -eu
rm -f "$1/t.db"
sqlite3 "$1/t.db" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)
INSERT INTO t
SELECT x, (x * 2654435761) % 1000003,
       printf('user%08d-%s', (x * 40503) % 1000000, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 5)),
       ((x * 7919) % 100000) / 7.0
FROM c;
SQL
