"""poolprof's bundled demo: a small two-stage pipeline (fetch over HTTP, then transform) to profile.

Stage 1 fetches 20 items from a local HTTP server that answers after 30 ms (started
here, on loopback, in a thread named "server"); stage 2 crunches numbers in a
thread named "transform". `poolprof run -- python3 demo/pipeline.py` tells which
stage should run on threads and which on processes.
"""
import http.server
import math
import threading
import urllib.request


class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        threading.Event().wait(0.030)
        body = b"x" * 1024
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def fetch(port, n):
    out = []
    for i in range(n):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{i}", timeout=10) as r:
            out.append(len(r.read()))
    return out


def transform(sizes):
    total = 0
    for s in sizes:
        for k in range(1, 60_000):
            total += math.isqrt(s * k) & 7
    return total


def named(name, fn, *args):
    """Run fn in an OS thread named `name` so poolprof reports it as a stage."""
    result = {}

    def body():
        try:
            import ctypes
            libc = ctypes.CDLL(None)
            libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
        except (OSError, AttributeError):
            pass
        result["value"] = fn(*args)

    t = threading.Thread(target=body, name=name)
    t.start()
    t.join()
    return result["value"]


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sizes = named("fetch", fetch, server.server_address[1], 20)
    print("transform result:", named("transform", transform, sizes))
    server.shutdown()
