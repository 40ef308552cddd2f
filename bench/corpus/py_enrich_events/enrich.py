# Enriches a stream of purchase events with derived fields; a memo cache keyed by event id never hits and never evicts.
import argparse
import hashlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

EVENTS = 400_000
SLICE = 10_000

_memo = {}  # meant to skip re-enriching retried events; ids are unique, so it only grows


def event(i):
    return {"id": f"evt-{i:09d}", "user": i * 7 % 50_000, "amount": (i * 31) % 20_000, "sku": f"S{i % 997:04d}"}


def enrich(ev):
    hit = _memo.get(ev["id"])
    if hit is not None:
        return hit
    tier = "gold" if ev["amount"] > 15_000 else "silver" if ev["amount"] > 5_000 else "bronze"
    label = f"{ev['sku']}/{tier}/{ev['user'] % 97:02d}"
    audit = (label * 24).encode()  # the raw record kept for the audit trail
    out = (ev["id"], tier, label, ev["amount"] * 100 // 119, audit)
    _memo[ev["id"]] = out
    return out


def run_slice(start):
    tiers = {"gold": 0, "silver": 0, "bronze": 0}
    net = 0
    h = hashlib.sha256()
    for i in range(start, min(start + SLICE, EVENTS)):
        _id, tier, label, amount_net, _audit = enrich(event(i))
        tiers[tier] += 1
        net += amount_net
        h.update(label.encode())
    return start, tiers, net, h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=["none", "thread", "process"], default="none")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    starts = range(0, EVENTS, SLICE)
    if args.pool == "none":
        parts = [run_slice(s) for s in starts]
    else:
        cls = ThreadPoolExecutor if args.pool == "thread" else ProcessPoolExecutor
        with cls(max_workers=args.jobs) as pool:
            parts = list(pool.map(run_slice, starts))
    tiers = {"gold": 0, "silver": 0, "bronze": 0}
    whole = hashlib.sha256()
    for _, t, _, digest in sorted(parts):
        for k, v in t.items():
            tiers[k] += v
        whole.update(digest.encode())
    print(f"events={sum(tiers.values())} tiers={tiers} net={sum(p[2] for p in parts)} digest={whole.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
