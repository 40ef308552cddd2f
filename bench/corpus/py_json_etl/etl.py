# Cleans a JSON-lines order export and rolls it up into revenue per country and month; the batches are independent.
import argparse
import hashlib
import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

COUPONS = {"SPRING10": 10, "VIP20": 20}
SPAN = 1 << 20  # bytes of the export per task


def clean_order(rec):
    # Normalise the fields the export gets wrong (case, whitespace, prices as strings).
    email = rec["customer"]["email"].strip().lower()
    country = rec["customer"]["country"].upper()
    month = rec["placed_at"][:7]
    cents = 0
    units = 0
    for line in rec["lines"]:
        price = int(round(float(line["unit_price"]) * 100))
        cents += price * line["qty"]
        units += line["qty"]
    off = COUPONS.get(rec["coupon"] or "", 0)
    cents -= cents * off // 100
    return email, country, month, cents, units


def roll_up(task):
    # Each task reads its own slice of the file, so only offsets and totals cross a pool.
    path, start, end = task
    with open(path, "rb") as f:
        f.seek(start)
        lines = f.read(end - start).decode().splitlines()
    revenue = Counter()
    units = Counter()
    customers = set()
    for raw in lines:
        email, country, month, cents, n = clean_order(json.loads(raw))
        revenue[(country, month)] += cents
        units[country] += n
        customers.add(email)
    return revenue, units, customers


def slices(path):
    # Cut the file into ~SPAN-byte pieces that end on a line boundary.
    with open(path, "rb") as f:
        start = 0
        while True:
            f.seek(start + SPAN)
            f.readline()
            end = f.tell()
            if end <= start + SPAN:
                break
            yield path, start, end
            start = end
        f.seek(0, 2)
        if f.tell() > start:
            yield path, start, f.tell()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="thread")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()

    if args.pool == "none":
        parts = map(roll_up, slices(args.input))
        pool = None
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        pool = cls(max_workers=args.jobs)
        parts = pool.map(roll_up, slices(args.input))

    revenue, units, customers = Counter(), Counter(), set()
    for r, u, c in parts:
        revenue.update(r)
        units.update(u)
        customers |= c
    if pool:
        pool.shutdown()

    digest = hashlib.sha256()
    for key in sorted(revenue):
        digest.update(f"{key[0]} {key[1]} {revenue[key]}\n".encode())
    for country in sorted(units):
        print(f"{country} units={units[country]} revenue={sum(v for k, v in revenue.items() if k[0] == country) / 100:.2f}")
    print(f"customers={len(customers)} cells={len(revenue)} sha256={digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
