#!/usr/bin/env python3
"""A local HTTP server that waits a fixed delay per request, so the I/O-bound workloads and tests need nothing from ../shared.

usage: slow_http.py [PORTFILE] [DELAY_MS] [BODY_BYTES]
Binds 127.0.0.1 on a free port and serves every GET after sleeping DELAY_MS milliseconds
(default 40) with BODY_BYTES bytes (default 2048). The port goes to PORTFILE when one is
given (written atomically, once the socket listens), else to stdout.
Like the reference server, it is threaded: requests wait side by side, so a client's
throughput is bounded by its own concurrency, not by the server.
"""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import time

portfile = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
delay = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.040
body = b"x" * (int(sys.argv[3]) if len(sys.argv) > 3 else 2048)


class Slow(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, as urllib makes them; no keep-alive bookkeeping.
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # a line per request would drown the test output


# daemon threads: an interrupted server must not wait for sleeping handlers to exit.
ThreadingHTTPServer.daemon_threads = True
# 8 workers x sweeps may open many connections at once; the default backlog of 5 would drop them.
ThreadingHTTPServer.request_queue_size = 1024
server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
port = server.server_address[1]
if portfile:
    # write then rename: a reader polling for the file never sees it half-written.
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(portfile + ".tmp", portfile)
else:
    print(port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
