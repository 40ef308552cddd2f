# Validates a batch of card numbers with the Luhn checksum, one number per pool task (chunksize 1).
import argparse
import hashlib
import random
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool

COUNT = 40_000


def luhn_ok(number):
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def numbers():
    rng = random.Random(31337)
    return ["4" + "".join(rng.choice("0123456789") for _ in range(15)) for _ in range(COUNT)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="process")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--chunksize", type=int, default=1)
    args = ap.parse_args()
    cards = numbers()
    if args.pool == "none":
        flags = [luhn_ok(c) for c in cards]
    else:
        cls = ThreadPool if args.pool == "thread" else Pool
        with cls(args.jobs) as pool:
            flags = pool.map(luhn_ok, cards, chunksize=args.chunksize)
    valid = [c for c, ok in zip(cards, flags) if ok]
    print(f"checked={len(cards)} valid={len(valid)} digest={hashlib.sha256(''.join(valid).encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
