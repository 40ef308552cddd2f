# Tracks a rolling p95 latency per API endpoint over its last 500 requests and counts SLO breaches; memory stays flat.
import argparse
import bisect
import hashlib
import random
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

ENDPOINTS = 40
REQUESTS = 30_000  # per endpoint
WINDOW = 500
SLO_MS = 400


def latencies(endpoint):
    # Stand-in for the endpoint's request log: seeded, with occasional slow bursts.
    rng = random.Random(endpoint)
    base = 40 + endpoint * 2
    for n in range(REQUESTS):
        burst = 3 if (n // 700) % 5 == 4 else 1
        yield int(rng.expovariate(1 / base) * burst) + 5


def scan(endpoint):
    window = deque()
    ordered = []
    breaches = 0
    worst = 0
    for ms in latencies(endpoint):
        window.append(ms)
        bisect.insort(ordered, ms)
        if len(window) > WINDOW:
            old = window.popleft()
            del ordered[bisect.bisect_left(ordered, old)]
        p95 = ordered[int(len(ordered) * 0.95) - 1] if len(ordered) >= 20 else 0
        if p95 > SLO_MS:
            breaches += 1
        worst = max(worst, p95)
    return endpoint, breaches, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="none")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    if args.pool == "none":
        rows = [scan(e) for e in range(ENDPOINTS)]
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            rows = list(pool.map(scan, range(ENDPOINTS)))
    h = hashlib.sha256("".join(f"{e}:{b}:{w};" for e, b, w in rows).encode())
    print(f"endpoints={len(rows)} breaching={sum(1 for r in rows if r[1])} breaches={sum(r[1] for r in rows)} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
