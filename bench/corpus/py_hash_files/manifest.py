# Writes a release manifest: the sha256 of every file in a directory, one file per task.
import argparse
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

CHUNK = 1 << 20


def digest_file(path):
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            sha.update(block)
            size += len(block)
    return os.path.basename(path), size, sha.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="thread")
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args()
    paths = sorted(os.path.join(args.root, n) for n in os.listdir(args.root) if n.endswith(".bin"))
    if args.pool == "none":
        rows = list(map(digest_file, paths))
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            rows = list(pool.map(digest_file, paths))
    whole = hashlib.sha256()
    for name, size, sha in rows:
        line = f"{sha}  {size:>10}  {name}"
        whole.update(line.encode())
        print(line)
    print(f"files={len(rows)} bytes={sum(r[1] for r in rows)} manifest={whole.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
