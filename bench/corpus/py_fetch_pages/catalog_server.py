# A local stand-in for a slow catalogue API: every GET waits a fixed delay, then answers a small JSON page.
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        page = int(self.path.rsplit("/", 1)[-1])
        time.sleep(self.server.delay)  # the upstream's latency, the same for every request
        items = [{"sku": f"P{page:04d}-{i}", "price_cents": (page * 37 + i * 11) % 5000 + 99} for i in range(20)]
        body = json.dumps({"page": page, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # clients open many connections at once; the default backlog of 5 drops SYNs


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.delay = float(sys.argv[1])
    print(server.server_address[1], flush=True)
    # Exit as soon as the client closes our stdin (it is done, or died); shutdown() would wait out a 0.5 s poll.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
