"""Capacity figures: bursts of one-shot clients against a slow upstream, a fan-out burst, a hung
upstream, the workers' memory with a thousand requests in flight, and how long CPU-heavy
moments (a large image) hold the other requests of a worker up.

Each burst is sent through the service and, in the same run, straight to the upstream; what
matters is the ratio of the two p99s.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import workload
from bench.burst import burst
from bench.latency import KeepAliveClient, percentile
from bench.memory import worker_memory_kb
from bench.throughput import run_wrk
from bench.upstream import BurstUpstreamProcess
from harness.gunicorn_server import GunicornServer

KB_PER_MB = 1024


@dataclass(frozen=True)
class CapacitySizes:
    """How big each capacity measurement is: a full run, or a smoke run for CI."""

    bursts: tuple
    burst_latency: float
    memory_burst: int
    fanout_clients: int
    fanout_latency: float
    hung_requests: int
    hung_deadline: float
    stall_seconds: float


FULL = CapacitySizes(
    bursts=(128, 512, 1024, 4096),
    burst_latency=2.0,
    memory_burst=1000,
    fanout_clients=128,
    fanout_latency=1.0,
    hung_requests=1000,
    hung_deadline=5.0,
    stall_seconds=6.0,
)
QUICK = CapacitySizes(
    bursts=(16, 32),
    burst_latency=0.2,
    memory_burst=32,
    fanout_clients=8,
    fanout_latency=0.2,
    hung_requests=20,
    hung_deadline=1.0,
    stall_seconds=1.0,
)
PAUSE_SECONDS = 1.0  # between bursts, so that one burst's tail does not meet the next


def bursts(server: GunicornServer, upstream: BurstUpstreamProcess, sizes: CapacitySizes) -> dict:
    """Each burst size through the service, then straight to the upstream: p50, p99, errors and ratio."""
    figures = {}
    burst(server.port, workload.completion(), 16)  # warm every worker's code paths and pool
    for count in sizes.bursts:
        through = burst(server.port, workload.completion(), count)
        time.sleep(PAUSE_SECONDS)
        direct = burst(upstream.port, workload.completion_direct(), count)
        time.sleep(PAUSE_SECONDS)
        figures.update(
            {
                f"burst.{count}.p50_s": through.p(50),
                f"burst.{count}.p99_s": through.p(99),
                f"burst.{count}.direct_p99_s": direct.p(99),
                f"burst.{count}.ratio": through.p(99) / direct.p(99),
                f"burst.{count}.errors": float(through.errors),
            }
        )
    return figures


def memory_in_flight(server: GunicornServer, upstream: BurstUpstreamProcess, sizes: CapacitySizes) -> dict:
    """Worker RSS while `memory_burst` requests wait on the upstream, and after they are answered."""
    time.sleep(PAUSE_SECONDS)
    idle = worker_memory_kb(server, "VmRSS")
    in_flight = {}

    def sample_midway() -> None:
        time.sleep(upstream.latency * 0.75)  # every request has reached the upstream and waits
        in_flight.update(worker_memory_kb(server, "VmRSS"))

    sampler = threading.Thread(target=sample_midway)
    sampler.start()
    run = burst(server.port, workload.completion(), sizes.memory_burst)
    sampler.join()
    time.sleep(PAUSE_SECONDS)
    after = worker_memory_kb(server, "VmRSS")
    return {
        "memory.in_flight_requests": float(sizes.memory_burst),
        "memory.errors": float(run.errors),
        "memory.idle_mb": max(idle.values()) / KB_PER_MB,
        "memory.in_flight_mb": max(in_flight.values()) / KB_PER_MB,
        "memory.after_vs_idle_pct": max((after[pid] - idle[pid]) / idle[pid] * 100 for pid in idle if pid in after),
    }


def fan_out_burst(server: GunicornServer, upstream: BurstUpstreamProcess, sizes: CapacitySizes) -> dict:
    """`fanout_clients` requests of 10 results each at once, beside one call per client straight upstream."""
    burst(server.port, workload.completion(10), 4)
    through = burst(server.port, workload.completion(10), sizes.fanout_clients)
    time.sleep(PAUSE_SECONDS)
    direct = burst(upstream.port, workload.completion_direct(sample=True), sizes.fanout_clients)
    return {
        "fanout_burst.p99_s": through.p(99),
        "fanout_burst.direct_p99_s": direct.p(99),
        "fanout_burst.ratio": through.p(99) / direct.p(99),
        "fanout_burst.errors": float(through.errors),
    }


def hung_upstream(server: GunicornServer, sizes: CapacitySizes) -> dict:
    """`hung_requests` requests to an upstream that never answers: each a 504 within its deadline + 1 s;
    then a request to a working route is served as usual."""
    run = burst(server.port, workload.completion(), sizes.hung_requests, timeout=sizes.hung_deadline + 30)
    timeouts = sum(1 for status in run.statuses if status == 504)
    started = time.perf_counter()
    after = burst(server.port, workload.text_to_text(), 1)
    served = [
        float(ms) for ms in re.findall(r"status=504 upstream_attempts=\d+ duration_ms=([\d.]+)", server.log_text())
    ]
    return {
        "hung.requests": float(sizes.hung_requests),
        "hung.answered_504": float(timeouts),
        "hung.worst_over_deadline_s": max(run.latencies) - sizes.hung_deadline,
        "hung.worst_service_time_over_deadline_s": max(served) / 1000 - sizes.hung_deadline,
        "hung.next_request_ok": float(after.errors == 0),
        "hung.next_request_s": time.perf_counter() - started,
    }


# gunicorn.conf.py plus a probe timing each greenlet's CPU stretch between two switches.
STALL_PROBE_CONFIG = Path(__file__).with_name("stall_probe.conf.py")


def stall_probe_report(pattern: Path) -> list:
    """Read the longest stretches (ms) the workers' probes wrote when they exited."""
    longest = []
    for path in pattern.parent.glob(f"{pattern.name}.*"):
        longest += json.loads(path.read_text(encoding="utf-8"))["longest_ms"]
    return sorted(longest, reverse=True)


def stall(server: GunicornServer, sizes: CapacitySizes) -> dict:
    """Whether large images passing through a worker hold its other requests up (one worker,
    under STALL_PROBE_CONFIG; the longest stretch is read once the service has stopped).

    A keep-alive client asks /healthz back to back, first alone, then while wrk (its own
    process, so that this one's GIL is not what is measured) fetches the 1.5 MB image on two
    connections; a pause of the worker shows as a slow health check.
    """
    alone = _health_latencies(server, sizes.stall_seconds / 2)
    loader = threading.Thread(target=run_wrk, args=(server.port, workload.large_image(), 2, sizes.stall_seconds + 1))
    loader.start()
    try:
        time.sleep(0.5)  # the images are flowing
        loaded = _health_latencies(server, sizes.stall_seconds)
    finally:
        loader.join()
    return {
        "stall.health_p50_alone_ms": statistics.median(alone) * 1000,
        "stall.health_p99_with_images_ms": percentile(loaded, 99) * 1000,
    }


def _health_latencies(server: GunicornServer, seconds: float) -> list:
    """Ask /healthz back to back for `seconds`; return every latency."""
    client = KeepAliveClient(server.port)
    latencies, ends = [], time.monotonic() + seconds
    try:
        while time.monotonic() < ends:
            latencies.append(client.get("/healthz"))
    finally:
        client.close()
    return latencies
