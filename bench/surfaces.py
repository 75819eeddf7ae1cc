"""The same upstream work through each of the gateway's APIs: the Hub's `/models/<id>` and the
OpenAI API's chat completion beside the native `/api/infer/<task>`, interleaved in one run."""

from __future__ import annotations

from pathlib import Path

from bench import workload
from bench.baseline import interleaved_latencies
from bench.latency import drive, percentile
from bench.phases import GROWTH_CONCURRENCY, Sizes, warm_up
from bench.service import start_service
from bench.upstream import UpstreamProcess
from harness.gunicorn_server import GunicornServer

# Each pair: the native call and the other surface's, both making the upstream call given third.
PAIRS = {
    "hub": (workload.translation_of_model, workload.hub_translation, workload.translation_direct),
    "openai": (workload.chat_of_model, workload.openai_chat, workload.chat_direct),
}


def surface_calls() -> list[workload.Call]:
    """Every call through the service that the comparison times."""
    return [make() for native, surface, _ in PAIRS.values() for make in (native, surface)]


def warm_up_surfaces(server: GunicornServer, sizes: Sizes) -> None:
    """Run the usual warm-up, then every surface's own path on every worker."""
    warm_up(server, sizes)
    drive(server.port, surface_calls(), sizes.warmup_requests, GROWTH_CONCURRENCY)


def added_latency(fast: UpstreamProcess, log_dir: Path, sizes: Sizes) -> dict:
    """Each surface's added p50 at concurrency 1 over its upstream call alone, beside the native
    API's added p50 for the same work, and the ratio of the two."""
    with start_service(fast, log_dir, "surfaces") as server:
        warm_up_surfaces(server, sizes)
        targets = {}
        for name, (native, surface, direct) in PAIRS.items():
            targets[f"{name}.native"] = (server.port, native())
            targets[f"{name}.surface"] = (server.port, surface())
            targets[f"{name}.upstream"] = (fast.port, direct())
        times = interleaved_latencies(targets, sizes.paired_requests)
    p50_ms = {target: percentile(samples, 50) * 1000 for target, samples in times.items()}
    figures = {}
    for name in PAIRS:
        native_added = p50_ms[f"{name}.native"] - p50_ms[f"{name}.upstream"]
        surface_added = p50_ms[f"{name}.surface"] - p50_ms[f"{name}.upstream"]
        figures.update(
            {
                f"surfaces.{name}.upstream_p50_ms": p50_ms[f"{name}.upstream"],
                f"surfaces.{name}.native_added_p50_ms": native_added,
                f"surfaces.{name}.added_p50_ms": surface_added,
                f"surfaces.{name}.added_p50_ratio": surface_added / native_added if native_added > 0 else float("inf"),
            }
        )
    return figures
