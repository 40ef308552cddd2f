# Writes the synthetic order export (JSON lines) that etl.py reads; seeded so every run gets the same file.
import json
import random
import sys

def main(out_dir, count=120_000):
    rng = random.Random(20240611)
    countries = ["DE", "FR", "US", "GB", "NL", "SE", "PL", "ES", "IT", "JP", "BR", "IN"]
    skus = [f"SKU-{i:05d}" for i in range(2000)]
    with open(f"{out_dir}/orders.jsonl", "w") as f:
        for n in range(count):
            lines = []
            for _ in range(rng.randint(1, 6)):
                lines.append({"sku": rng.choice(skus), "qty": rng.randint(1, 9),
                              "unit_price": f"{rng.uniform(0.5, 400):.2f}"})
            rec = {"order_id": f"ORD-{n:08d}",
                   "customer": {"email": f"User{rng.randint(1, 40000)}@Example.COM ",
                                "country": rng.choice(countries).lower() if rng.random() < 0.3 else rng.choice(countries)},
                   "placed_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
                   "lines": lines,
                   "coupon": rng.choice([None, None, None, "SPRING10", "VIP20", "bad code"])}
            f.write(json.dumps(rec) + "\n")

if __name__ == "__main__":
    main(sys.argv[1])
