"""Bursts: N one-shot clients sending one request each at the same moment, timed one by one.

The clients are coroutines of one asyncio loop: each connects, sends its request and reads
the whole answer; its latency runs from the moment all of them are let go. The same burst is
sent straight to the upstream in the same run, as the reference.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass

from bench.latency import percentile
from bench.workload import Call

CONNECT_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class BurstRun:
    """What one burst measured: each client's latency and status."""

    latencies: list
    statuses: list

    @property
    def errors(self) -> int:
        """Count the answers that were not the expected status (connection failures included)."""
        return sum(1 for status in self.statuses if status != 200)

    def p(self, q: float) -> float:
        """Return the q-th percentile latency in seconds."""
        return percentile(self.latencies, q)


def request_bytes(call: Call) -> bytes:
    """Frame one call as an HTTP/1.1 request that closes its connection after the answer."""
    headers = {**call.headers, "Host": "127.0.0.1", "Content-Length": str(len(call.body)), "Connection": "close"}
    head = f"POST {call.path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + call.body


async def _one(port: int, payload: bytes, go: asyncio.Event, timeout: float) -> tuple[float, int]:
    """Wait for the start, then connect, send and read one answer; return (seconds, status)."""
    await go.wait()
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_SECONDS)
        try:
            writer.write(payload)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(head.split(b" ", 2)[1])
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            await asyncio.wait_for(reader.readexactly(length) if length is not None else reader.read(), timeout)
        finally:
            writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        status = 0
    return time.perf_counter() - started, status


async def _burst(port: int, payload: bytes, count: int, timeout: float) -> BurstRun:
    """Start `count` clients at once and gather their results."""
    go = asyncio.Event()
    tasks = [asyncio.create_task(_one(port, payload, go, timeout)) for _ in range(count)]
    await asyncio.sleep(0)  # every client is waiting on the start
    go.set()
    results = await asyncio.gather(*tasks)
    return BurstRun([seconds for seconds, _ in results], [status for _, status in results])


def burst(port: int, call: Call, count: int, timeout: float = 120.0) -> BurstRun:
    """Send `call` from `count` clients at the same moment; return every latency and status."""
    _allow_open_files(count + 256)
    return asyncio.run(_burst(port, request_bytes(call), count, timeout))


def _allow_open_files(needed: int) -> None:
    """Let this process hold `needed` sockets at once (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
