# Summarises a day of readings per sensor (quantiles, smoothed peak, spike count) with numpy, one sensor per task.
import argparse
import hashlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

SENSORS = 24
SAMPLES = 300_000


def readings(sensor):
    # Stand-in for loading one sensor's samples: a seeded random walk with noise.
    rng = np.random.default_rng(1000 + sensor)
    drift = np.cumsum(rng.standard_normal(SAMPLES) * 0.01)
    return drift + rng.standard_normal(SAMPLES)


def summarise(sensor):
    x = readings(sensor)
    ordered = np.sort(x)
    q = ordered[[SAMPLES // 100, SAMPLES // 2, SAMPLES - SAMPLES // 100]]
    window = np.ones(64) / 64
    smooth = np.convolve(x, window, mode="valid")
    spikes = int(np.count_nonzero(np.abs(np.diff(x)) > 4.0))
    return sensor, q.round(6).tolist(), round(float(smooth.max()), 6), spikes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="thread")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    ids = range(SENSORS)
    if args.pool == "none":
        rows = list(map(summarise, ids))
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            rows = list(pool.map(summarise, ids))
    h = hashlib.sha256()
    for sensor, q, peak, spikes in rows:
        line = f"sensor {sensor:02d} p1={q[0]:.4f} p50={q[1]:.4f} p99={q[2]:.4f} peak={peak:.4f} spikes={spikes}"
        h.update(line.encode())
    print(line)
    print(f"sensors={len(rows)} spikes={sum(r[3] for r in rows)} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
