#!/usr/bin/env python3
"""ipc_cost.py: what a process pool pays per byte it moves on this machine, the recommender's IPC_NS_PER_BYTE.

With --messages, what it pays per task beyond the bytes, the recommender's MSG_ROUND_TRIP_NS:
a pool of 2 maps a function that returns its argument over --tasks small ints, at chunksize 1
(a message out and one back per task) and at chunksize 1000, interleaved; the difference per
task is the dispatcher's fixed cost per round trip, which paces a pool of small tasks.
multiprocessing.Pool.imap and concurrent.futures.ProcessPoolExecutor.map are both timed.

A multiprocessing pool sends each task as pickle.dumps -> pipe write -> pipe read -> pickle.loads
(and the result back the same way). This times exactly that chain for the reference workloads'
payload (lists of Python ints) and for bytes, through a real pipe to a real child process, and
prints ns per pickled byte: median of --rounds runs, each moving --mb megabytes, beside the copy
alone (os.write/os.read of the same bytes), which the recommender adds to a sampled
serialization time (COPY_NS_PER_BYTE).
"""
import argparse
import os
import pickle
import statistics
import struct
import sys
import time


def child(rfd, wfd):
    # Read length-prefixed messages; unpickle each unless told to only copy; ack the total.
    while True:
        hdr = os.read(rfd, 9)
        if len(hdr) < 9:
            return
        n, mode = struct.unpack("<QB", hdr)
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(rfd, min(1 << 20, n - len(buf)))
            if not chunk:
                return
            buf += chunk
        if mode == 1:
            pickle.loads(buf)
        os.write(wfd, b"k")


def send(wfd, rfd, data, mode):
    os.write(wfd, struct.pack("<QB", len(data), mode))
    view = memoryview(data)
    while view:
        n = os.write(wfd, view)
        view = view[n:]
    os.read(rfd, 1)


def echo(x):
    return x


def message_cost(rounds, tasks):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import Pool

    def timed(run, chunk):
        t0 = time.perf_counter()
        n = sum(1 for _ in run(echo, range(tasks), chunksize=chunk))
        assert n == tasks
        return time.perf_counter() - t0

    print("| pool | tasks | chunksize 1 s | chunksize 1000 s | fixed cost per task (round trip) us |")
    print("|---|---|---|---|---|")
    with Pool(2) as pool, ProcessPoolExecutor(2) as ex:
        for name, run in (("multiprocessing.Pool.imap", pool.imap), ("ProcessPoolExecutor.map", ex.map)):
            timed(run, 1)  # warm-up: workers started, code paged in
            one, many = [], []
            for _ in range(rounds):
                one.append(timed(run, 1))
                many.append(timed(run, 1000))
            a, b = statistics.median(one), statistics.median(many)
            print(f"| {name} | {tasks} | {a:.3f} | {b:.3f} | {(a - b) / tasks * 1e6:.1f} |")
    print(f"\n{sys.executable} {sys.version.split()[0]}, median of {rounds} interleaved rounds")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--mb", type=float, default=40.0, help="megabytes of pickled payload per round")
    ap.add_argument("--messages", action="store_true", help="the fixed cost per task instead (MSG_ROUND_TRIP_NS)")
    ap.add_argument("--tasks", type=int, default=20000, help="tasks per timed map with --messages")
    args = ap.parse_args()
    if args.messages:
        message_cost(args.rounds, args.tasks)
        return

    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(from_child_r)
        child(to_child_r, from_child_w)
        os._exit(0)
    os.close(to_child_r)
    os.close(from_child_w)

    payloads = {
        "list of 200k ints": list(range(200_000)),
        "list of 20k floats": [i * 0.5 for i in range(20_000)],
        "1 MiB bytes": os.urandom(1 << 20),
    }
    print("| payload | pickled bytes | pickle + pipe + unpickle ns/byte | copy alone ns/byte |")
    print("|---|---|---|---|")
    for name, obj in payloads.items():
        size = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        reps = max(1, int(args.mb * 1e6 / size))
        full, copy = [], []
        for _ in range(args.rounds):
            # Interleaved: the full chain, then the copy alone of the same bytes.
            t0 = time.perf_counter()
            for _ in range(reps):
                send(to_child_w, from_child_r, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), 1)
            full.append((time.perf_counter() - t0) / (reps * size) * 1e9)
            blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            t0 = time.perf_counter()
            for _ in range(reps):
                send(to_child_w, from_child_r, blob, 0)
            copy.append((time.perf_counter() - t0) / (reps * size) * 1e9)
        print(f"| {name} | {size} | {statistics.median(full):.2f} | {statistics.median(copy):.2f} |")
    os.close(to_child_w)
    os.waitpid(pid, 0)
    print(f"\n{sys.executable} {sys.version.split()[0]}, median of {args.rounds} rounds, {args.mb:g} MB each")


if __name__ == "__main__":
    main()
