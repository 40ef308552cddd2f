# A nightly job that waits for the export window to open (one fixed wait), then writes a short summary of yesterday's counts.
import argparse
import hashlib
import time

WINDOW_OPENS_IN = 1.0  # seconds; the upstream export is not readable before then


def summary():
    counts = {f"region-{r}": (r * 7919) % 1000 for r in range(50)}
    text = "\n".join(f"{k}\t{v}" for k, v in sorted(counts.items()))
    return len(counts), sum(counts.values()), hashlib.sha256(text.encode()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=WINDOW_OPENS_IN)
    args = ap.parse_args()
    time.sleep(args.window)
    regions, total, digest = summary()
    print(f"regions={regions} total={total} digest={digest}")


if __name__ == "__main__":
    main()
