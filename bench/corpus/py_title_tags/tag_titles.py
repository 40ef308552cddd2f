# Normalises marketplace listing titles and derives tags, a slug and a near-duplicate signature, one title per submitted task.
import argparse
import hashlib
import random
import zlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

COUNT = 10_000
WORDS = ("Vintage Leather Wallet Mens Slim Bifold RFID Blocking Brown Black Genuine Handmade Gift "
         "Wireless Bluetooth Headphones Over-Ear Noise Cancelling Foldable 40h Battery Kids Adults "
         "Stainless Steel Water Bottle Insulated 750ml Leakproof Sports Gym Hiking Cycling BPA-Free "
         "Organic Cotton T-Shirt Unisex Crew Neck Plain Tee S M L XL XXL 3-Pack Summer Sale NEW!!").split()
RULES = {
    "fashion": {"wallet", "t-shirt", "tee", "leather", "cotton", "crew", "neck", "bifold"},
    "audio": {"headphones", "bluetooth", "wireless", "noise", "cancelling"},
    "outdoor": {"hiking", "cycling", "sports", "bottle", "insulated", "gym"},
    "gift": {"gift", "handmade", "vintage"},
}

# Masks for a MinHash-style signature, used downstream to find near-duplicate listings.
MASKS = [(0x9E3779B1 * (k + 1)) & 0xFFFFFFFF for k in range(12)]


def signature(text):
    grams = {zlib.crc32(text[i:i + 3].encode()) for i in range(len(text) - 2)}
    return [min(g ^ m for g in grams) for m in MASKS]


def tag(item):
    n, title = item
    clean = []
    for word in title.split():
        w = "".join(ch for ch in word.lower() if ch.isalnum() or ch == "-").strip("-")
        if w and w not in clean:
            clean.append(w)
    words = set(clean)
    tags = sorted(name for name, keys in RULES.items() if len(words & keys) >= 2)
    sizes = [w.upper() for w in clean if w in {"s", "m", "l", "xl", "xxl"}]
    slug = "-".join(clean[:8])
    sig = signature(" ".join(clean))
    return n, slug, tags, sizes, sig[0] ^ sig[-1]


def tag_batch(batch):
    return [tag(it) for it in batch]


def titles():
    rng = random.Random(2718)
    return [(n, " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))) for n in range(COUNT)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="process")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunksize", type=int, default=1, help="titles per submitted task (1: each its own)")
    args = ap.parse_args()
    items = titles()
    if args.pool == "none":
        rows = [tag(it) for it in items]
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            if args.chunksize <= 1:
                futures = [pool.submit(tag, it) for it in items]
                rows = [f.result() for f in futures]
            else:
                k = args.chunksize
                futures = [pool.submit(tag_batch, items[i:i + k]) for i in range(0, len(items), k)]
                rows = [row for f in futures for row in f.result()]
    h = hashlib.sha256()
    counts = {}
    for n, slug, tags, sizes, score in rows:
        h.update(f"{n}|{slug}|{','.join(tags)}|{','.join(sizes)}|{score}\n".encode())
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
    print(f"titles={len(rows)} tags={sorted(counts.items())} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
