# Waits for 100 submitted batch jobs to finish: each job's status is polled with a short backoff until it reports done.
import argparse
import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

JOBS = 100
POLLS = 3        # a job reports done on its third poll
BACKOFF = 0.005  # seconds between polls of one job


def status(job, attempt):
    # Stand-in for the status endpoint: cheap to ask, done after POLLS attempts.
    return ("done", (job * 2654435761) % 100_000) if attempt >= POLLS else ("running", None)


def wait_job(job):
    attempt = 0
    while True:
        attempt += 1
        state, result = status(job, attempt)
        if state == "done":
            return job, attempt, result
        time.sleep(BACKOFF)


async def wait_job_async(job, limit):
    async with limit:
        attempt = 0
        while True:
            attempt += 1
            state, result = status(job, attempt)
            if state == "done":
                return job, attempt, result
            await asyncio.sleep(BACKOFF)


async def wait_all_async(concurrency):
    limit = asyncio.Semaphore(concurrency)
    return await asyncio.gather(*(wait_job_async(j, limit) for j in range(JOBS)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["serial", "thread", "async"], default="serial")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    if args.mode == "serial":
        rows = [wait_job(j) for j in range(JOBS)]
    elif args.mode == "thread":
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(wait_job, range(JOBS)))
    else:
        rows = asyncio.run(wait_all_async(args.jobs))
    h = hashlib.sha256("".join(f"{j}:{r};" for j, _, r in sorted(rows)).encode())
    print(f"jobs={len(rows)} polls={sum(a for _, a, _ in rows)} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
