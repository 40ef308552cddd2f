# Computes per-frame exposure statistics of a raw RGB video capture; each decoded frame (a 2.6 MiB array) is sent to a worker.
import argparse
import hashlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

WIDTH, HEIGHT = 1280, 720
FRAME_BYTES = WIDTH * HEIGHT * 3


def frames(path):
    with open(path, "rb") as f:
        while True:
            raw = f.read(FRAME_BYTES)
            if len(raw) < FRAME_BYTES:
                return
            yield np.frombuffer(raw, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)


def exposure(frame):
    channel_sums = [frame[:, :, c].sum(dtype=np.int64) for c in range(3)]
    hist = np.bincount(frame[:, :, 1].ravel(), minlength=256)
    clipped = int(hist[250:].sum())
    return [int(v) for v in channel_sums], int(hist.argmax()), clipped


def run_pool(pool, items, window):
    # Keep a bounded number of frames in flight, as a capture loop would.
    pending = deque()
    for item in items:
        pending.append(pool.submit(exposure, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="process")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if args.pool == "none":
        rows = [exposure(f) for f in frames(args.capture)]
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            rows = list(run_pool(pool, frames(args.capture), 2 * args.jobs))
    h = hashlib.sha256()
    for sums, mode, clipped in rows:
        h.update(f"{sums}|{mode}|{clipped};".encode())
    total = np.sum([r[0] for r in rows], axis=0)
    print(f"frames={len(rows)} channel_sums={total.tolist()} clipped={sum(r[2] for r in rows)} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
