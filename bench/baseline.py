"""The gateway beside the minimal app (bench/minimal_app.py) on the same upstream: what its own
work adds at concurrency 1, and the share of the minimal app's throughput it keeps at 16."""

from __future__ import annotations

from pathlib import Path

from bench import workload
from bench.latency import KeepAliveClient, percentile
from bench.phases import Sizes, warm_up
from bench.service import fresh_folder, service_environment, start_service
from bench.throughput import run_wrk
from bench.upstream import UpstreamProcess
from harness.gunicorn_server import GunicornServer

CONFIG = Path(__file__).with_name("minimal_app.conf.py")
THROUGHPUT_CONCURRENCY = 16


def start_minimal_app(upstream: UpstreamProcess, log_dir: Path) -> GunicornServer:
    """The minimal app under gunicorn, in front of `upstream`."""
    folder = fresh_folder(log_dir, "minimal-app")
    env = service_environment(upstream)
    return GunicornServer(env=env, log_path=folder / "app.log", app="bench.minimal_app:app", config=CONFIG).start(
        timeout=60
    )


def interleaved_latencies(targets: dict[str, tuple[int, workload.Call]], count: int) -> dict[str, list[float]]:
    """Time `count` calls to each target at concurrency 1, in turn, so that drift hits all alike.
    Targets on one port share one connection, so that they are served by the same worker."""
    clients = {port: KeepAliveClient(port) for port, _ in targets.values()}
    try:
        for port, call in targets.values():
            clients[port].send(call)  # connect and warm up outside the timing
        times: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(count):
            for name, (port, call) in targets.items():
                times[name].append(clients[port].send(call))
        return times
    finally:
        for client in clients.values():
            client.close()


def added_latency(fast: UpstreamProcess, log_dir: Path, sizes: Sizes) -> dict:
    """The gateway's and the minimal app's added p50 at concurrency 1, over the upstream alone."""
    call = workload.translation()
    with start_service(fast, log_dir, "beside-minimal") as gateway, start_minimal_app(fast, log_dir) as minimal:
        warm_up(gateway, sizes)
        times = interleaved_latencies(
            {
                "gateway": (gateway.port, call),
                "minimal": (minimal.port, call),
                "upstream": (fast.port, workload.translation_direct()),
            },
            sizes.paired_requests,
        )
    upstream = percentile(times["upstream"], 50) * 1000
    gateway_added = percentile(times["gateway"], 50) * 1000 - upstream
    minimal_added = percentile(times["minimal"], 50) * 1000 - upstream
    return {
        "baseline.gateway_added_p50_ms": gateway_added,
        "baseline.minimal_added_p50_ms": minimal_added,
        "baseline.added_p50_ratio": gateway_added / minimal_added if minimal_added > 0 else float("inf"),
    }


def throughput(slow: UpstreamProcess, log_dir: Path, sizes: Sizes) -> dict:
    """Requests per second at concurrency 16 through each, one after the other, on the same upstream."""
    call = workload.translation()
    with start_service(slow, log_dir, "beside-minimal-load") as gateway, start_minimal_app(slow, log_dir) as minimal:
        warm_up(gateway, sizes)
        run_wrk(minimal.port, call, THROUGHPUT_CONCURRENCY, 1)  # warm the minimal app too
        gateway_rps = run_wrk(gateway.port, call, THROUGHPUT_CONCURRENCY, sizes.wrk_seconds).requests_per_second
        minimal_rps = run_wrk(minimal.port, call, THROUGHPUT_CONCURRENCY, sizes.wrk_seconds).requests_per_second
    return {
        "baseline.gateway_rps_c16": gateway_rps,
        "baseline.minimal_rps_c16": minimal_rps,
        "baseline.throughput_ratio_c16": gateway_rps / minimal_rps,
    }
