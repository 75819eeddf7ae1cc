"""A keep-alive HTTP client, latency percentiles, and closed-loop drivers built on it."""

from __future__ import annotations

import http.client
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

from bench.workload import Call

TIMEOUT_SECONDS = 30


class BenchError(RuntimeError):
    """A request of the benchmark failed, so its figures would mean nothing."""


class KeepAliveClient:
    """One persistent HTTP/1.1 connection to a loopback port."""

    def __init__(self, port: int):
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)

    def send(self, call: Call) -> float:
        """Send one call, read the whole answer and return its latency in seconds."""
        started = time.perf_counter()
        self._connection.request("POST", call.path, body=call.body, headers=call.headers)
        response = self._connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != call.status:
            raise BenchError(f"POST {call.path} answered {response.status}: {body[:300]!r}")
        return elapsed

    def get(self, path: str) -> float:
        """GET `path`, read the answer and return its latency in seconds (200 expected)."""
        started = time.perf_counter()
        self._connection.request("GET", path)
        response = self._connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise BenchError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return elapsed

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def percentile(samples: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) of samples, interpolating between ranks."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def paired_latencies(
    service_port: int, service_call: Call, direct_port: int, direct_call: Call, count: int
) -> tuple[list[float], list[float]]:
    """Time `count` calls each way at concurrency 1, alternating, so that drift hits both alike."""
    through, direct = KeepAliveClient(service_port), KeepAliveClient(direct_port)
    try:
        through.send(service_call), direct.send(direct_call)  # connect and warm up outside the timing
        service_times, direct_times = [], []
        for _ in range(count):
            service_times.append(through.send(service_call))
            direct_times.append(direct.send(direct_call))
        return service_times, direct_times
    finally:
        through.close(), direct.close()


def added_percentiles(service_times: list[float], direct_times: list[float]) -> dict:
    """Return p50/p99 each way and what the service adds, in milliseconds."""
    figures = {}
    for q in (50, 99):
        service_ms, direct_ms = percentile(service_times, q) * 1000, percentile(direct_times, q) * 1000
        figures[f"service_p{q}_ms"], figures[f"direct_p{q}_ms"] = service_ms, direct_ms
        figures[f"added_p{q}_ms"] = service_ms - direct_ms
    return figures


def drive(port: int, calls: list[Call], count: int, concurrency: int) -> None:
    """Send `count` requests cycling through `calls` from `concurrency` keep-alive clients."""
    lock, sequence = threading.Lock(), cycle(calls)
    remaining = [count]

    def next_call() -> Call | None:
        with lock:
            if remaining[0] <= 0:
                return None
            remaining[0] -= 1
            return next(sequence)

    def client_loop() -> None:
        client = KeepAliveClient(port)
        try:
            while (call := next_call()) is not None:
                client.send(call)
        finally:
            client.close()

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client_loop) for _ in range(concurrency)]:
            future.result()
