# Runs the month-end report queries against the sales database, one report per task, each on its own read-only connection.
import argparse
import hashlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
import sqlite3

REPORTS = {
    "revenue_by_month": "SELECT substr(day, 1, 7) m, SUM(qty * price_cents) FROM sales GROUP BY m ORDER BY m",
    "revenue_by_channel": "SELECT channel, SUM(qty * price_cents), COUNT(*) FROM sales GROUP BY channel ORDER BY channel",
    "top_stores": "SELECT store, SUM(qty * price_cents) r FROM sales GROUP BY store ORDER BY r DESC, store LIMIT 10",
    "top_products": "SELECT product, SUM(qty) q FROM sales GROUP BY product ORDER BY q DESC, product LIMIT 20",
    "big_tickets": "SELECT COUNT(*), AVG(price_cents) FROM sales WHERE qty * price_cents > 200000",
    "weekend_share": "SELECT channel, SUM(CASE WHEN CAST(substr(day, 9, 2) AS INTEGER) % 7 IN (0, 6) THEN qty ELSE 0 END) * 1000 / SUM(qty) FROM sales GROUP BY channel ORDER BY channel",
    "store_month": "SELECT store, substr(day, 6, 2) mm, SUM(qty) FROM sales WHERE store % 10 = 3 GROUP BY store, mm ORDER BY store, mm",
    "distinct_products": "SELECT store, COUNT(DISTINCT product) FROM sales GROUP BY store ORDER BY store",
    "price_bands": "SELECT price_cents / 2500 band, COUNT(*), SUM(qty) FROM sales GROUP BY band ORDER BY band",
    "q4_products": "SELECT product, SUM(qty * price_cents) r FROM sales WHERE day >= '2023-10-01' GROUP BY product ORDER BY r DESC, product LIMIT 15",
    "phone_orders": "SELECT store, COUNT(*) FROM sales WHERE channel = 'phone' AND qty > 6 GROUP BY store ORDER BY store",
    "daily_peaks": "SELECT day, SUM(qty) s FROM sales GROUP BY day ORDER BY s DESC, day LIMIT 10",
}


def run_report(args):
    db, name = args
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(REPORTS[name]).fetchall()
    con.close()
    return name, len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:12]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="none")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    tasks = [(args.db, name) for name in REPORTS]
    if args.pool == "none":
        results = [run_report(t) for t in tasks]
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            results = list(pool.map(run_report, tasks))
    for name, n, digest in results:
        print(f"{name:20s} rows={n:4d} {digest}")


if __name__ == "__main__":
    main()
