# A local stand-in for an inventory service: asyncio HTTP/1.0, each answer after a fixed delay, many connections at once.
import asyncio
import json
import sys


async def handle(reader, writer, delay):
    request = await reader.readuntil(b"\r\n\r\n")
    store = int(request.split(b" ", 2)[1].rsplit(b"/", 1)[-1])
    await asyncio.sleep(delay)  # the service's latency, the same for every request
    rows = [{"sku": f"S{(store * 13 + i) % 9973:04d}", "on_hand": (store * 7 + i * 3) % 41, "reserved": (store + i) % 5}
            for i in range(100)]
    body = json.dumps({"store": store, "rows": rows}).encode()
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    writer.close()


async def main():
    delay = float(sys.argv[1])
    server = await asyncio.start_server(lambda r, w: handle(r, w, delay), "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Stop when the client closes our stdin (it exited or died).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
