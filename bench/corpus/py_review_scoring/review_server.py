# A local stand-in for a reviews API: GET /reviews/<page> answers 50 seeded reviews after a fixed delay.
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VOCAB = ("the battery life is great but screen feels cheap and not bright enough love camera quality "
         "terrible support never again excellent value would buy again broke after two weeks "
         "fast shipping packaging damaged works perfectly okay for the price sound is muddy "
         "highly recommend do not recommend returned it amazing build quality slow charging").split()


def page_body(page):
    rng = random.Random(page)
    reviews = [{"id": page * 100 + i, "stars": rng.randint(1, 5),
                "text": " ".join(rng.choice(VOCAB) for _ in range(rng.randint(20, 60))) + rng.choice([".", "!", "!!", "?"])}
               for i in range(50)]
    return json.dumps({"page": page, "reviews": reviews}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        page = int(self.path.rsplit("/", 1)[-1])
        time.sleep(self.server.delay)  # the API's latency, the same for every request
        body = page_body(page)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.delay = float(sys.argv[1])
    print(server.server_address[1], flush=True)
    # Exit as soon as the client closes our stdin (it is done, or died); shutdown() would wait out a 0.5 s poll.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
