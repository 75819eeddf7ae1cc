"""What per-key limits and the usage ledger cost: the same requests through three services side by
side, one without a store (`STORE=off`), one with every limit and the ledger on SQLite, one on
a real redis-server on loopback. The key's limits are set far above what the run sends, so
every request does all the work of admission and settlement without being refused.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from bench import workload
from bench.latency import KeepAliveClient, drive, percentile
from bench.phases import Sizes
from bench.service import fresh_folder, start_service
from bench.throughput import run_wrk
from bench.upstream import UpstreamProcess
from harness.keys import bearer, write_key_file
from harness.redis_server import RedisServer

BENCH_KEY = "hfg_bench-key-not-a-real-secret-0123456789"
UNREACHED = 10**9  # limits that do all their work and never refuse
STORES = ("off", "sqlite", "redis")
WARM_UP_CONCURRENCY = 8


def keyed(call: workload.Call) -> workload.Call:
    """The same call, presenting the bench key."""
    return replace(call, headers={**call.headers, **bearer(BENCH_KEY)})


def start_three(stack: ExitStack, upstream: UpstreamProcess, log_dir: Path, name: str) -> dict:
    """One service per store; the two with a store have the key file with every limit."""
    key_file = write_key_file(
        log_dir / "bench-keys.toml",
        {
            "bench": {
                "secret": BENCH_KEY,
                "rpm": UNREACHED,
                "concurrency": UNREACHED,
                "results_per_day": UNREACHED,
                "images_per_day": UNREACHED,
            }
        },
    )
    redis = stack.enter_context(RedisServer(fresh_folder(log_dir, f"redis-{name}")))
    settings = {
        "off": {"STORE": "off"},
        "sqlite": {"STORE": "sqlite", "API_KEYS_FILE": str(key_file)},
        "redis": {"STORE": "redis", "REDIS_URL": redis.url, "API_KEYS_FILE": str(key_file)},
    }
    return {
        store: stack.enter_context(start_service(upstream, log_dir, f"{name}-{store}", **settings[store]))
        for store in STORES
    }


def call_for(store: str, call: workload.Call) -> workload.Call:
    return call if store == "off" else keyed(call)


def added_latency(fast: UpstreamProcess, log_dir: Path, sizes: Sizes) -> dict:
    """Concurrency 1: each store's service and the upstream, one request each in turn."""
    with ExitStack() as stack:
        services = start_three(stack, fast, log_dir, "limits-latency")
        clients = {store: KeepAliveClient(server.port) for store, server in services.items()}
        direct = KeepAliveClient(fast.port)
        calls = {store: call_for(store, workload.translation()) for store in STORES}
        for store, server in services.items():  # every worker's pools and store connection, outside the timing
            drive(server.port, [calls[store]], sizes.warmup_requests, WARM_UP_CONCURRENCY)
        times: dict[str, list[float]] = {store: [] for store in (*STORES, "direct")}
        for store in STORES:  # connect and warm up outside the timing
            clients[store].send(calls[store])
        for _ in range(sizes.paired_requests):
            for store in STORES:
                times[store].append(clients[store].send(calls[store]))
            times["direct"].append(direct.send(workload.translation_direct()))
        for client in (*clients.values(), direct):
            client.close()
    direct_p50 = percentile(times["direct"], 50) * 1000
    figures = {f"limits.added_p50_ms.{store}": percentile(times[store], 50) * 1000 - direct_p50 for store in STORES}
    for store in ("sqlite", "redis"):
        figures[f"limits.extra_p50_ms.{store}"] = (
            figures[f"limits.added_p50_ms.{store}"] - figures["limits.added_p50_ms.off"]
        )
    return figures


def throughput(slow: UpstreamProcess, log_dir: Path, sizes: Sizes) -> dict:
    """Concurrency 32 against the 100 ms upstream: requests per second with each store."""
    with ExitStack() as stack:
        services = start_three(stack, slow, log_dir, "limits-load")
        rates = {}
        for store, server in services.items():
            call = call_for(store, workload.translation())
            run_wrk(server.port, call, 32, 1)  # warm up every worker's pools
            rates[store] = run_wrk(server.port, call, 32, sizes.wrk_seconds).requests_per_second
    figures = {f"limits.requests_per_second.{store}": rate for store, rate in rates.items()}
    for store in ("sqlite", "redis"):
        figures[f"limits.throughput_drop_pct.{store}"] = (1 - rates[store] / rates["off"]) * 100
    return figures
