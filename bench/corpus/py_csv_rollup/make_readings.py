# Writes a seeded CSV of smart-meter readings (about 500k rows) for rollup.py.
import random
import sys

def main(out_path, rows=500_000):
    rng = random.Random(4242)
    statuses = ["OK", "OK", "OK", "OK", "EST", "ERR"]
    with open(out_path, "w") as f:
        f.write("meter_id,read_at,kwh,status\n")
        for n in range(rows):
            meter = f"M{rng.randint(1, 3000):05d}"
            ts = f"2024-03-{rng.randint(1, 31):02d} {rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}:00"
            kwh = f"{rng.randint(0, 9)}.{rng.randint(0, 999):03d}"
            f.write(f"{meter},{ts},{kwh},{rng.choice(statuses)}\n")

if __name__ == "__main__":
    main(sys.argv[1])
