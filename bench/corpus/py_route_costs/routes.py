# Computes delivery cost tables: shortest paths from every depot over a seeded road graph, one depot per task.
import argparse
import heapq
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

NODES = 4000
DEPOTS = 96


def build_graph(seed=7):
    rng = random.Random(seed)
    adj = [[] for _ in range(NODES)]
    for u in range(NODES):
        # A ring keeps the graph connected; the rest are random shortcuts.
        links = [(u + 1) % NODES] + [rng.randrange(NODES) for _ in range(4)]
        for v in links:
            w = rng.randint(1, 100)
            adj[u].append((v, w))
            adj[v].append((u, w))
    return adj


GRAPH = build_graph()


def depot_costs(src):
    dist = [None] * NODES
    dist[src] = 0
    heap = [(0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, w in GRAPH[u]:
            nd = d + w
            if dist[v] is None or nd < dist[v]:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    far = max(dist)
    return src, sum(dist), far


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="process")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    depots = [(i * 61) % NODES for i in range(DEPOTS)]
    if args.pool == "none":
        rows = list(map(depot_costs, depots))
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            rows = list(pool.map(depot_costs, depots))
    total = sum(r[1] for r in rows)
    worst = max(rows, key=lambda r: (r[2], r[0]))
    print(f"depots={len(rows)} total_cost={total} worst_depot={worst[0]} worst_far={worst[2]}")


if __name__ == "__main__":
    main()
