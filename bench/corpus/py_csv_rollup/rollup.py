# Rolls smart-meter CSV readings up into per-meter daily usage; a reader feeds batches of lines to workers through a queue.
import argparse
import csv
import hashlib
import multiprocessing
import queue
import threading
from collections import defaultdict

BATCH = 5000


def milli(kwh):
    # Exact integer arithmetic, so totals do not depend on the order batches finish in.
    whole, _, frac = kwh.partition(".")
    return int(whole) * 1000 + int(frac.ljust(3, "0")[:3])


def rollup(lines):
    usage = defaultdict(int)
    peaks = {}
    rejected = 0
    for meter, read_at, kwh, status in csv.reader(lines):
        if status == "ERR" or len(read_at) != 19 or not meter.startswith("M"):
            rejected += 1
            continue
        value = milli(kwh)
        if status == "EST":
            value = value * 9 // 10  # estimated reads are discounted
        day = read_at[:10]
        usage[(meter, day)] += value
        if value > peaks.get(meter, -1):
            peaks[meter] = value
    return dict(usage), peaks, rejected


def read_batches(path):
    with open(path, newline="") as f:
        f.readline()
        batch = []
        for line in f:
            batch.append(line)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def worker(inq, outq):
    while True:
        batch = inq.get()
        if batch is None:
            outq.put(None)
            return
        outq.put(rollup(batch))


def run_pool(path, jobs, use_processes):
    if use_processes:
        inq, outq = multiprocessing.Queue(maxsize=2 * jobs), multiprocessing.Queue()
        workers = [multiprocessing.Process(target=worker, args=(inq, outq)) for _ in range(jobs)]
    else:
        inq, outq = queue.Queue(maxsize=2 * jobs), queue.Queue()
        workers = [threading.Thread(target=worker, args=(inq, outq)) for _ in range(jobs)]
    for w in workers:
        w.start()

    def reader():
        for batch in read_batches(path):
            inq.put(batch)
        for _ in workers:
            inq.put(None)

    feeder = threading.Thread(target=reader)
    feeder.start()
    parts, finished = [], 0
    while finished < jobs:
        item = outq.get()
        if item is None:
            finished += 1
        else:
            parts.append(item)
    feeder.join()
    for w in workers:
        w.join()
    return parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="thread")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    if args.pool == "none":
        parts = [rollup(b) for b in read_batches(args.csv)]
    else:
        parts = run_pool(args.csv, args.jobs, args.pool == "process")
    usage, peaks, rejected = defaultdict(int), {}, 0
    for u, p, r in parts:
        for key, v in u.items():
            usage[key] += v
        for meter, v in p.items():
            peaks[meter] = max(v, peaks.get(meter, -1))
        rejected += r
    h = hashlib.sha256()
    for key in sorted(usage):
        h.update(f"{key[0]},{key[1]},{usage[key]}\n".encode())
    top = max(peaks.items(), key=lambda kv: (kv[1], kv[0]))
    print(f"meter_days={len(usage)} rejected={rejected} total_kwh={sum(usage.values()) / 1000:.3f} "
          f"peak={top[0]}:{top[1]} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
