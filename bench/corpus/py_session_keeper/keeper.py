# A presence service: 20 client sessions receive updates handed off by a dispatcher and send heartbeats when idle for 30 ms.
import argparse
import asyncio
import hashlib
import threading
import time
from collections import deque

SESSIONS = 20
MESSAGES = 400
SPACING = 0.002  # updates arrive at a fixed rate, as they would from the network
IDLE = 0.03


class Session:
    def __init__(self, sid):
        self.sid = sid
        self.inbox = deque()
        self.state = {}
        self.digest = hashlib.sha256(str(sid).encode())
        self.handled = 0
        self.heartbeats = 0

    def apply(self, msg):
        key, value = msg
        self.state[key] = value
        self.digest.update(f"{key}={value};".encode())
        self.handled += 1

    def drain(self):
        while self.inbox:
            self.apply(self.inbox.popleft())

    def heartbeat(self):
        # Drop keys nobody updated recently; cheap bookkeeping.
        self.heartbeats += 1
        if len(self.state) > 8:
            for key in sorted(self.state)[:-8]:
                del self.state[key]


def message(i):
    return i % SESSIONS, (f"user{(i * 7) % 13}", f"{(i * 2654435761) % 1000:03d}")


def dispatch(sessions, hand_off):
    start = time.monotonic()
    for i in range(MESSAGES):
        delay = start + i * SPACING - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sid, msg = message(i)
        sessions[sid].inbox.append(msg)
        hand_off(sid)


def run_threads(sessions, jobs):
    # Sessions are spread over `jobs` threads; each thread waits on its own Event.
    owner = {}
    groups = [sessions[i::jobs] for i in range(jobs)]
    wakes = [threading.Event() for _ in groups]
    for n, group in enumerate(groups):
        for s in group:
            owner[s.sid] = wakes[n]
    done = threading.Event()

    def serve(group, wake):
        while True:
            if wake.wait(IDLE):
                wake.clear()
                for s in group:
                    s.drain()
            else:
                for s in group:
                    s.heartbeat()
            if done.is_set():
                for s in group:
                    s.drain()
                return

    threads = [threading.Thread(target=serve, args=(g, w), name=f"session-{n}") for n, (g, w) in enumerate(zip(groups, wakes))]
    for t in threads:
        t.start()
    dispatch(sessions, lambda sid: owner[sid].set())
    done.set()
    for w in wakes:
        w.set()
    for t in threads:
        t.join()


def run_serial(sessions):
    # One loop: handle each update as it arrives, heartbeat the sessions that have been idle for 30 ms.
    last = {s.sid: time.monotonic() for s in sessions}

    def hand_off(sid):
        sessions[sid].drain()
        now = time.monotonic()
        last[sid] = now
        for s in sessions:
            if now - last[s.sid] >= IDLE:
                s.heartbeat()
                last[s.sid] = now

    dispatch(sessions, hand_off)


async def run_async(sessions, jobs):
    groups = [sessions[i::jobs] for i in range(jobs)]
    wakes = [asyncio.Event() for _ in groups]
    owner = {s.sid: wakes[n] for n, g in enumerate(groups) for s in g}
    done = False

    async def serve(group, wake):
        while True:
            try:
                await asyncio.wait_for(wake.wait(), IDLE)
                wake.clear()
                for s in group:
                    s.drain()
            except asyncio.TimeoutError:
                for s in group:
                    s.heartbeat()
            if done:
                for s in group:
                    s.drain()
                return

    tasks = [asyncio.create_task(serve(g, w)) for g, w in zip(groups, wakes)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(MESSAGES):
        delay = start + i * SPACING - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sid, msg = message(i)
        sessions[sid].inbox.append(msg)
        owner[sid].set()
    done = True
    for w in wakes:
        w.set()
    await asyncio.gather(*tasks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["thread", "serial", "async"], default="thread")
    ap.add_argument("--workers", type=int, default=SESSIONS)
    args = ap.parse_args()
    sessions = [Session(i) for i in range(SESSIONS)]
    if args.mode == "thread":
        run_threads(sessions, args.workers)
    elif args.mode == "async":
        asyncio.run(run_async(sessions, args.workers))
    else:
        run_serial(sessions)
    whole = hashlib.sha256()
    for s in sessions:
        whole.update(s.digest.digest())
    print(f"sessions={len(sessions)} updates={sum(s.handled for s in sessions)} digest={whole.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
