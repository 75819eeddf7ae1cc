"""The measurements, one function per figure group; each returns {figure key: value} for one repeat."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench import workload
from bench.latency import KeepAliveClient, added_percentiles, drive, paired_latencies
from bench.memory import reset_peak, worker_memory_kb
from bench.throughput import run_wrk
from bench.upstream import UpstreamProcess, large_image
from harness.gunicorn_server import GunicornServer

KB_PER_MB = 1024


@dataclass(frozen=True)
class Sizes:
    """How much each measurement sends: a full run, or a smoke run for CI."""

    paired_requests: int
    wrk_seconds: float
    fanout_pairs: int
    image_requests: int
    growth_requests: int
    warmup_requests: int


FULL = Sizes(
    paired_requests=500, wrk_seconds=8, fanout_pairs=20, image_requests=30, growth_requests=10_000, warmup_requests=200
)
QUICK = Sizes(
    paired_requests=20, wrk_seconds=1, fanout_pairs=2, image_requests=3, growth_requests=200, warmup_requests=10
)
GROWTH_CONCURRENCY = 8


def warm_up(server: GunicornServer, sizes: Sizes) -> None:
    """Run every code path on every worker once, so that lazy imports and caches are not counted."""
    drive(server.port, workload.mixed(), sizes.warmup_requests, GROWTH_CONCURRENCY)


def worker_rss(server: GunicornServer, sizes: Sizes) -> dict:
    """Resident memory per worker once warm, then growth after `growth_requests` more (largest worker)."""
    warm_up(server, sizes)
    idle = worker_memory_kb(server, "VmRSS")
    drive(server.port, workload.mixed(), sizes.growth_requests, GROWTH_CONCURRENCY)
    after = worker_memory_kb(server, "VmRSS")
    growth = [(after[pid] - idle[pid]) / idle[pid] * 100 for pid in idle if pid in after]
    return {
        "rss_idle_mb": max(idle.values()) / KB_PER_MB,
        "rss_after_mb": max(after.values()) / KB_PER_MB,
        "rss_growth_pct": max(growth),
        "growth_requests": sizes.growth_requests,
        "workers": len(idle),
    }


def added_latency(server: GunicornServer, upstream: UpstreamProcess, sizes: Sizes) -> dict:
    """Concurrency 1: the same request through the service and straight upstream, side by side."""
    figures = {}
    pairs = {
        "translation": (workload.translation(), workload.translation_direct()),
        "text_to_image": (workload.text_to_image(), workload.text_to_image_direct()),
    }
    for name, (through, direct) in pairs.items():
        times = paired_latencies(server.port, through, upstream.port, direct, sizes.paired_requests)
        figures.update({f"{key}.{name}": value for key, value in added_percentiles(*times).items()})
    return figures


def large_image_cost(server: GunicornServer, upstream: UpstreamProcess, sizes: Sizes) -> dict:
    """The 1.5 MB image at concurrency 1: time added, and the worker's peak RSS above its resting RSS."""
    times = paired_latencies(
        server.port, workload.large_image(), upstream.port, workload.large_image_direct(), sizes.image_requests
    )
    client = KeepAliveClient(server.port)
    try:
        extra_kb = [request_peak_kb(server, client, workload.large_image()) for _ in range(sizes.image_requests)]
    finally:
        client.close()
    image_bytes = large_image().size
    figures = {f"large_image.{key}": value for key, value in added_percentiles(*times).items()}
    figures.update(
        {
            "large_image.image_mb": image_bytes / 2**20,
            "large_image.extra_peak_mb": statistics.median(extra_kb) / KB_PER_MB,
            "large_image.extra_peak_max_mb": max(extra_kb) / KB_PER_MB,
            "large_image.extra_peak_ratio": statistics.median(extra_kb) * 1024 / image_bytes,
        }
    )
    return figures


def request_peak_kb(server: GunicornServer, client: KeepAliveClient, call: workload.Call) -> int:
    """Send one request and return how far the busiest worker's RSS peaked above where it rested."""
    resting = worker_memory_kb(server, "VmRSS")
    if not reset_peak(server):
        resting = worker_memory_kb(server, "VmHWM")
    client.send(call)
    peak = worker_memory_kb(server, "VmHWM")
    return max(peak[pid] - resting[pid] for pid in resting if pid in peak)


def load(server: GunicornServer, upstream: UpstreamProcess, sizes: Sizes) -> dict:
    """Throughput at 32 connections, and added p99 at 16 and 64, against the slow upstream."""
    ideal = 32 / upstream.latency
    through, direct = workload.translation(), workload.translation_direct()
    service_run = run_wrk(server.port, through, 32, sizes.wrk_seconds)
    direct_run = run_wrk(upstream.port, direct, 32, sizes.wrk_seconds)
    figures = {
        "requests_per_second.c32": service_run.requests_per_second,
        "direct_requests_per_second.c32": direct_run.requests_per_second,
        "throughput_efficiency.c32": service_run.requests_per_second / ideal,
        "direct_efficiency.c32": direct_run.requests_per_second / ideal,
    }
    for connections in (16, 64):
        service_run = run_wrk(server.port, through, connections, sizes.wrk_seconds)
        direct_run = run_wrk(upstream.port, direct, connections, sizes.wrk_seconds)
        figures[f"service_p99_ms.c{connections}"] = service_run.p99_ms
        figures[f"direct_p99_ms.c{connections}"] = direct_run.p99_ms
        figures[f"added_p99_ms.c{connections}"] = service_run.p99_ms - direct_run.p99_ms
        figures[f"added_p50_ms.c{connections}"] = service_run.p50_ms - direct_run.p50_ms
    return figures


def fan_out(server: GunicornServer, sizes: Sizes) -> dict:
    """Median time of num_sentences 5 over num_sentences 1, alternating, against the slow upstream."""
    client = KeepAliveClient(server.port)
    try:
        one, five = workload.translation(1), workload.translation(5)
        client.send(one), client.send(five)
        ones, fives = [], []
        for _ in range(sizes.fanout_pairs):
            ones.append(client.send(one))
            fives.append(client.send(five))
    finally:
        client.close()
    return {
        "fanout_one_ms": statistics.median(ones) * 1000,
        "fanout_five_ms": statistics.median(fives) * 1000,
        "fanout_ratio": statistics.median(fives) / statistics.median(ones),
    }
