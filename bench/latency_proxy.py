#!/usr/bin/env python3
"""A latency-injecting TCP proxy for cks-doctor's benchmark (bench/bench.py).

Listens on 127.0.0.1 only and forwards every connection to one target on 127.0.0.1, delaying
each chunk of bytes by a fixed one-way delay in each direction (default 50 ms client -> server
and 50 ms server -> client, i.e. one injected round trip of 100 ms per request/response).

Each chunk is delivered at (time it was read + delay), in order: chunks in flight are pipelined,
not queued behind each other's delays, so the proxy behaves like a link with a fixed propagation
delay and no bandwidth limit. End of stream (FIN) is forwarded with the same delay.

What it cannot delay: the TCP handshake itself. The kernel completes it before the proxy
accepts the connection, so a client's `connect()` returns at loopback speed; only bytes are
delayed. (TLS handshakes and HTTP exchanges, which are bytes, are delayed.)

Prints its port on stdout (one line, just the number), then serves. It stops when:
  * its standard input closes (the parent process exited or closed the pipe),
  * its parent process goes away (checked every 0.5 s),
  * --max-seconds have passed (default 1800), or SIGTERM/SIGINT.

Commands, one per line on stdin, each answered with one JSON line on stdout:
  * "stats": {"connections": N, "chunks_up": N, "chunks_down": N, "bytes_up": N,
    "bytes_down": N} (totals since start) plus, since the last "mark", "first_up_at" (Unix time
    the first byte from a client was read) and "last_down_at" (Unix time the last byte was
    delivered to a client), or null;
  * "mark": starts a new window for first_up_at/last_down_at; answers {"ok": true}.

Run: python3 bench/latency_proxy.py --target-port PORT [--delay-ms 50] [--up-ms X --down-ms Y]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

LOOPBACK = "127.0.0.1"


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.chunks_up = 0
        self.chunks_down = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.first_up_at: float | None = None
        self.last_down_at: float | None = None

    def mark(self) -> None:
        self.first_up_at = None
        self.last_down_at = None

    def as_json(self) -> str:
        return json.dumps(self.__dict__)


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    stats: Stats,
    up: bool,
) -> None:
    """Copies reader -> writer, each chunk delivered `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((loop.time() + delay, data))
                if not data:
                    return
                if up:
                    if stats.first_up_at is None:
                        stats.first_up_at = time.time()
                    stats.chunks_up += 1
                    stats.bytes_up += len(data)
                else:
                    stats.chunks_down += 1
                    stats.bytes_down += len(data)
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + delay, b""))

    async def write() -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                if not up:
                    stats.last_down_at = time.time()
        except (ConnectionError, OSError):
            pass

    reader_task = asyncio.ensure_future(read())
    try:
        await write()
    finally:
        reader_task.cancel()


async def handle(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    stats: Stats,
) -> None:
    stats.connections += 1
    try:
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, args.target_port)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            pipe(client_reader, up_writer, args.up_ms / 1000.0, stats, True),
            pipe(up_reader, client_writer, args.down_ms / 1000.0, stats, False),
        )
    finally:
        for w in (up_writer, client_writer):
            try:
                w.close()
            except Exception:
                pass


async def main_async(args: argparse.Namespace) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def finish(*_: object) -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish)

    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args, stats), LOOPBACK, args.port, limit=1 << 20
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)

    parent = os.getppid()

    async def watch_parent() -> None:
        deadline = time.monotonic() + args.max_seconds
        while time.monotonic() < deadline:
            if os.getppid() != parent:
                break
            await asyncio.sleep(0.5)
        finish()

    def stdin_reader() -> None:
        # Runs in a thread: a blocking read of stdin; EOF means the parent is gone.
        try:
            for line in sys.stdin:
                command = line.strip()
                if command == "stats":
                    answer = stats.as_json()
                elif command == "mark":
                    loop.call_soon_threadsafe(stats.mark)
                    answer = json.dumps({"ok": True})
                else:
                    answer = json.dumps({"error": f"unknown command {command!r}"})
                sys.stdout.write(answer + "\n")
                sys.stdout.flush()
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(finish)

    if not args.no_stdin:
        loop.run_in_executor(None, stdin_reader)
    watcher = asyncio.ensure_future(watch_parent())
    await stop
    # Exit at once: connections still open are simply dropped (the benchmark is over), and
    # the stdin thread may still be blocked in a read.
    server.close()
    sys.stdout.flush()
    os._exit(0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1 (0: a free port)")
    p.add_argument("--target-port", type=int, required=True, help="port of the target on 127.0.0.1")
    p.add_argument("--delay-ms", type=float, default=50.0, help="one-way delay in each direction (default 50)")
    p.add_argument("--up-ms", type=float, default=None, help="client -> target delay (default: --delay-ms)")
    p.add_argument("--down-ms", type=float, default=None, help="target -> client delay (default: --delay-ms)")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="stop after this long (default 1800)")
    p.add_argument("--no-stdin", action="store_true", help="do not stop when stdin closes")
    args = p.parse_args()
    if args.up_ms is None:
        args.up_ms = args.delay_ms
    if args.down_ms is None:
        args.down_ms = args.delay_ms
    if min(args.up_ms, args.down_ms) < 0 or args.max_seconds <= 0:
        p.error("delays must be >= 0 and --max-seconds > 0")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
