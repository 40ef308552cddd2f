# Pulls every page of a paginated catalogue API and totals its prices; the API here is a local server with a fixed delay.
import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

PAGES = 150
DELAY = 0.012


def start_server():
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "catalog_server.py"), str(DELAY)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def total_page(body):
    doc = json.loads(body)
    return doc["page"], sum(item["price_cents"] for item in doc["items"]), len(doc["items"])


def fetch(base, page):
    with urllib.request.urlopen(f"{base}/page/{page}") as resp:
        return total_page(resp.read())


async def fetch_async(host, port, page, limit):
    async with limit:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /page/{page} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0])
    return total_page(body)


async def crawl_async(base, concurrency):
    host, port = base.split("//")[1].split(":")
    limit = asyncio.Semaphore(concurrency)
    return await asyncio.gather(*(fetch_async(host, int(port), p, limit) for p in range(PAGES)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["serial", "thread", "async"], default="serial")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    server, base = start_server()
    try:
        if args.mode == "serial":
            rows = [fetch(base, p) for p in range(PAGES)]
        elif args.mode == "thread":
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                rows = list(pool.map(lambda p: fetch(base, p), range(PAGES)))
        else:
            rows = asyncio.run(crawl_async(base, args.jobs))
    finally:
        server.stdin.close()
        server.wait()
    h = hashlib.sha256()
    for page, cents, n in sorted(rows):
        h.update(f"{page}:{cents}:{n};".encode())
    print(f"pages={len(rows)} items={sum(r[2] for r in rows)} total={sum(r[1] for r in rows) / 100:.2f} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
