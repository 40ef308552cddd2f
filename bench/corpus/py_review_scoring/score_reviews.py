# Downloads product review pages from the reviews API and scores each review's sentiment with a lexicon; fetch and scoring run as two stages.
import argparse
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

PAGES = 120
DELAY = 0.02
FETCHERS = 8

LEXICON = {"great": 2, "love": 2, "excellent": 3, "amazing": 3, "perfectly": 2, "recommend": 2, "fast": 1,
           "value": 1, "okay": 0, "cheap": -1, "terrible": -3, "broke": -3, "damaged": -2, "muddy": -1,
           "slow": -1, "returned": -2, "never": -1}
NEGATORS = {"not", "never", "do"}
PASSES = 32


def start_server():
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "review_server.py"), str(DELAY)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{int(proc.stdout.readline())}"


def fetch(base, page):
    with urllib.request.urlopen(f"{base}/reviews/{page}") as resp:
        return resp.read()


def score_page(body):
    doc = json.loads(body)
    out = []
    for r in doc["reviews"]:
        words = [w.strip(".!?,").lower() for w in r["text"].split()]
        score = 0
        for rounds in range(PASSES):  # the lexicon model re-weights each word by position, once per pass
            for i, w in enumerate(words):
                s = LEXICON.get(w, 0)
                if s and i and words[i - 1] in NEGATORS:
                    s = -s
                score += s * (PASSES - rounds) * (1 + (i * 7 + rounds) % 3)
        exclaim = r["text"].count("!")
        label = "pos" if score > 300 else "neg" if score < -300 else "mixed"
        out.append((r["id"], r["stars"], score + exclaim, label))
    return doc["page"], out


def fetch_and_score(base, page):
    return score_page(fetch(base, page))


def staged(base, scorers, use_processes):
    # Stage 1: FETCHERS threads download pages into a queue. Stage 2: scorers take pages off it.
    pages = queue.Queue()
    for p in range(PAGES):
        pages.put(p)
    bodies = queue.Queue(maxsize=32)
    results = []

    def fetcher():
        while True:
            try:
                p = pages.get_nowait()
            except queue.Empty:
                return
            bodies.put(fetch(base, p))

    fetchers = [threading.Thread(target=fetcher, name=f"fetch-{i}") for i in range(FETCHERS)]
    for t in fetchers:
        t.start()

    def closer():
        for t in fetchers:
            t.join()
        for _ in range(scorers):
            bodies.put(None)

    threading.Thread(target=closer, name="fetch-done").start()

    if use_processes:
        with ProcessPoolExecutor(max_workers=scorers) as pool:
            futures = []
            done = 0
            while done < scorers:
                body = bodies.get()
                if body is None:
                    done += 1
                else:
                    futures.append(pool.submit(score_page, body))
            results = [f.result() for f in futures]
    else:
        lock = threading.Lock()

        def scorer():
            while True:
                body = bodies.get()
                if body is None:
                    return
                r = score_page(body)
                with lock:
                    results.append(r)

        workers = [threading.Thread(target=scorer, name=f"score-{i}") for i in range(scorers)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["serial", "staged-threads", "staged-processes", "process-pool"], default="staged-threads")
    ap.add_argument("--scorers", type=int, default=2)
    args = ap.parse_args()
    server, base = start_server()
    try:
        if args.mode == "serial":
            results = [fetch_and_score(base, p) for p in range(PAGES)]
        elif args.mode == "process-pool":
            with ProcessPoolExecutor(max_workers=args.scorers) as pool:
                results = list(pool.map(fetch_and_score, [base] * PAGES, range(PAGES)))
        else:
            results = staged(base, args.scorers, args.mode == "staged-processes")
    finally:
        server.stdin.close()
        server.wait()
    h = hashlib.sha256()
    labels = {"pos": 0, "neg": 0, "mixed": 0}
    for page, rows in sorted(results):
        for rid, stars, score, label in rows:
            labels[label] += 1
            h.update(f"{rid}:{stars}:{score}:{label};".encode())
    print(f"pages={len(results)} reviews={sum(labels.values())} labels={labels} digest={h.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
