# Builds the seeded sales database (300k rows, no indexes) that reports.py queries.
import random
import sqlite3
import sys

def main(path, rows=300_000):
    rng = random.Random(8080)
    con = sqlite3.connect(path)
    con.execute("DROP TABLE IF EXISTS sales")
    con.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, store INTEGER, product TEXT, day TEXT, qty INTEGER, price_cents INTEGER, channel TEXT)")
    channels = ["web", "app", "store", "phone"]
    batch = []
    for i in range(rows):
        batch.append((i, rng.randint(1, 120), f"P{rng.randint(1, 4000):05d}", f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                      rng.randint(1, 12), rng.randint(99, 25_000), rng.choice(channels)))
        if len(batch) == 50_000:
            con.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    if batch:
        con.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    con.commit()
    con.close()

if __name__ == "__main__":
    main(sys.argv[1])
