# Writes a synthetic web access log (about 24 MiB, seeded) for pack.py to compress.
import random
import sys

def main(out_path, target=24 << 20):
    rng = random.Random(99)
    paths = ["/", "/login", "/api/v1/items", "/api/v1/items/{}", "/static/app.{}.js", "/search?q={}", "/cart", "/checkout"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)", "python-requests/2.31"]
    written = 0
    with open(out_path, "w") as f:
        while written < target:
            path = rng.choice(paths).format(rng.randint(1, 99999))
            line = (f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - "
                    f"[12/Mar/2024:{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000] "
                    f"\"GET {path} HTTP/1.1\" {rng.choice([200, 200, 200, 304, 404, 500])} {rng.randint(100, 90000)} "
                    f"\"-\" \"{rng.choice(agents)}\" rt={rng.random():.3f}\n")
            f.write(line)
            written += len(line)

if __name__ == "__main__":
    main(sys.argv[1])
