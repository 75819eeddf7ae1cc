"""What the answer cache, coalescing and circuit breakers buy: a hit at concurrency 1, a catalogue
translated twice with `hf-infer batch`, fifty identical requests at once, and a fallback chain
whose first model never answers, before and after its breaker opens.

Upstream calls are counted from the service's own metrics (hf_gateway_upstream_attempts_total).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import workload
from bench.burst import burst
from bench.latency import KeepAliveClient, percentile
from bench.service import fresh_folder, start_service
from bench.upstream import BurstUpstreamProcess, UpstreamProcess
from harness.catalogs import LANGUAGES, task_routes
from harness.gunicorn_server import GunicornServer
from harness.paths import REPO_ROOT

CACHE_ON = {"CACHE_TTL_SECONDS": "86400"}
# A chain whose first model never answers (its own server: a hung upstream), then madlad400.
DEAD_FIRST_MODELS = (
    LANGUAGES
    + task_routes(zh2en=("dead", "madlad"), text_to_text=("google/flan-t5-xxl",))
    + """
[models.dead]
id = "bench/dead-model"
url = "{dead_url}"

[models.madlad]
id = "google/madlad400-3b-mt"
input_template = "<2{{tgt}}> {{text}}"
"""
)


@dataclass(frozen=True)
class CacheSizes:
    """How much each cache measurement sends: a full run, or a smoke run for CI."""

    hits: int
    titles: int
    identical: int
    breaker_failures: int
    after_open: int


FULL = CacheSizes(hits=500, titles=1000, identical=50, breaker_failures=5, after_open=20)
QUICK = CacheSizes(hits=20, titles=20, identical=10, breaker_failures=1, after_open=3)


def upstream_attempts(server: GunicornServer) -> float:
    """Upstream attempts the service made so far, from its metrics (every worker's)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return sum(float(value) for value in re.findall(r"^hf_gateway_upstream_attempts_total\{[^}]*\} (\S+)$", text, re.M))


def hit_latency(fast: UpstreamProcess, log_dir: Path, sizes: CacheSizes) -> dict:
    """Concurrency 1: a greedy translation answered from the cache, beside the same call upstream."""
    with start_service(fast, log_dir, "cache-hits", **CACHE_ON) as server:
        hit = KeepAliveClient(server.port)
        direct = KeepAliveClient(fast.port)
        call = workload.translation_greedy()
        hit.send(call)  # kept now
        hits, directs = [], []
        for _ in range(sizes.hits):
            hits.append(hit.send(call))
            directs.append(direct.send(workload.translation_greedy_direct()))
        hit.close(), direct.close()
    return {
        "cache.hit_p50_ms": percentile(hits, 50) * 1000,
        "cache.hit_p99_ms": percentile(hits, 99) * 1000,
        "cache.direct_p50_ms": percentile(directs, 50) * 1000,
    }


def batch_twice(slow: UpstreamProcess, log_dir: Path, sizes: CacheSizes) -> dict:
    """`hf-infer batch` over distinct titles twice: seconds each time, and upstream calls the second."""
    folder = fresh_folder(log_dir, "batch-files")  # hf-infer batch resumes an output it finds
    titles = folder / "titles.txt"
    titles.write_text("".join(f"连衣裙 第{number}号\n" for number in range(sizes.titles)), encoding="utf-8")
    with start_service(slow, log_dir, "cache-batch", **CACHE_ON) as server:
        seconds, calls = [], []
        for run in ("first", "second"):
            before = upstream_attempts(server)
            started = time.perf_counter()
            command = [sys.executable, "-m", "service", "batch", "--url", server.url]
            command += ["--task", "text-translation", "--args", '{"do_sample": false}', "--concurrency", "8"]
            command += [str(titles), str(folder / f"{run}.jsonl")]
            subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, timeout=600)
            seconds.append(time.perf_counter() - started)
            calls.append(upstream_attempts(server) - before)
    identical = (folder / "first.jsonl").read_bytes() == (folder / "second.jsonl").read_bytes()
    return {
        "cache.batch_first_s": seconds[0],
        "cache.batch_second_s": seconds[1],
        "cache.batch_ratio": seconds[1] / seconds[0],
        "cache.batch_second_upstream_calls": calls[1],
        "cache.batch_identical": float(identical),
    }


def identical_at_once(log_dir: Path, sizes: CacheSizes) -> dict:
    """`identical` greedy requests at the same moment against a 2 s upstream: upstream calls, time."""
    with BurstUpstreamProcess(2.0) as upstream, start_service(upstream, log_dir, "coalescing", **CACHE_ON) as server:
        before = upstream_attempts(server)
        run = burst(server.port, workload.completion(), sizes.identical)
        calls = upstream_attempts(server) - before
    return {
        "coalescing.upstream_calls": calls,
        "coalescing.p50_s": run.p(50),
        "coalescing.max_s": max(run.latencies),
        "coalescing.errors": float(run.errors),
    }


def dead_first_model(fast: UpstreamProcess, log_dir: Path, sizes: CacheSizes) -> dict:
    """Sampled translations through a chain whose first model never answers: each waits half the
    deadline until the breaker opens, then goes straight to the second model."""
    with BurstUpstreamProcess(0, hang=True) as dead:
        models = log_dir / "dead-first.toml"
        models.write_text(DEAD_FIRST_MODELS.format(dead_url=dead.url), encoding="utf-8")
        settings = {
            "MODELS_CONFIG": str(models),
            "TEXT_DEADLINE_SECONDS": "4",
            "BREAKER_FAILURES": str(sizes.breaker_failures),
            "BREAKER_OPEN_SECONDS": "600",
        }
        with start_service(fast, log_dir, "breaker", **settings) as server:
            client, direct = KeepAliveClient(server.port), KeepAliveClient(fast.port)
            before = [client.send(workload.translation()) for _ in range(sizes.breaker_failures)]
            after, alone = [], []
            for _ in range(sizes.after_open):
                after.append(client.send(workload.translation()))
                alone.append(direct.send(workload.translation_direct()))
            client.close(), direct.close()
    return {
        "breaker.before_p50_s": statistics.median(before),
        "breaker.after_p50_ms": statistics.median(after) * 1000,
        "breaker.second_model_alone_p50_ms": statistics.median(alone) * 1000,
        "breaker.after_over_second_model_ms": (statistics.median(after) - statistics.median(alone)) * 1000,
    }
