# Compresses a log file into independently decompressible 1 MiB zlib frames (seekable archive), one frame per task.
import argparse
import os
import zlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

FRAME = 1 << 20


def pack_frame(task):
    # Each task reads its own slice, so only offsets go to a worker and only the frame comes back.
    path, offset = task
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read(FRAME)
    return offset, zlib.compress(raw, 9)  # archives are written once and kept: best ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("out")
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="thread")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    size = os.path.getsize(args.log)
    tasks = [(args.log, off) for off in range(0, size, FRAME)]
    if args.pool == "none":
        frames = map(pack_frame, tasks)
        pool = None
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        pool = cls(max_workers=args.jobs)
        frames = pool.map(pack_frame, tasks)
    crc = 0
    packed = 0
    index = []
    with open(args.out, "wb") as out:
        for offset, blob in frames:
            index.append((offset, out.tell(), len(blob)))
            out.write(blob)
            crc = zlib.crc32(blob, crc)
            packed += len(blob)
    if pool:
        pool.shutdown()
    print(f"frames={len(index)} raw={size} packed={packed} ratio={packed / size:.4f} crc={crc:08x}")


if __name__ == "__main__":
    main()
