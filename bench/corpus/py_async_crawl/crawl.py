# Collects stock levels from every store's inventory endpoint and reports the SKUs that are short; stores are independent requests.
import argparse
import asyncio
import hashlib
import http.client
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

STORES = 1200
DELAY = 0.006


def start_server():
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "stock_server.py"), str(DELAY)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def shortages(body):
    doc = json.loads(body)
    short = [r["sku"] for r in doc["rows"] if r["on_hand"] - r["reserved"] < 3]
    return doc["store"], short


async def store_async(port, store, limit):
    async with limit:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stock/%d HTTP/1.0\r\nHost: inventory\r\n\r\n" % store)
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(head[:40])
    return shortages(body)


async def crawl_async(port, concurrency):
    limit = asyncio.Semaphore(concurrency)
    return await asyncio.gather(*(store_async(port, s, limit) for s in range(STORES)))


def store_blocking(port, store):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", f"/stock/{store}", headers={"Host": "inventory"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return shortages(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["async", "thread", "serial"], default="async")
    ap.add_argument("--concurrency", type=int, default=500)
    args = ap.parse_args()
    server, port = start_server()
    try:
        if args.mode == "async":
            rows = asyncio.run(crawl_async(port, args.concurrency))
        elif args.mode == "thread":
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                rows = list(pool.map(lambda s: store_blocking(port, s), range(STORES)))
        else:
            rows = [store_blocking(port, s) for s in range(STORES)]
    finally:
        server.stdin.close()
        server.wait()
    counts = Counter()
    h = hashlib.sha256()
    for store, short in sorted(rows):
        counts.update(short)
        h.update(f"{store}:{','.join(short)};".encode())
    worst = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    print(f"stores={len(rows)} short_lines={sum(counts.values())} worst={worst} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
