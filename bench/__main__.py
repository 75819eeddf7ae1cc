"""`python -m bench`: start a loopback upstream and the service, measure, print and save the figures."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import baseline, cache, capacity, key_limits, phases, report, surfaces
from bench.report import machine
from bench.service import start_service
from bench.throughput import ensure_wrk
from bench.upstream import BurstUpstreamProcess, UpstreamProcess

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"
LOAD_LATENCY_SECONDS = 0.1  # the throughput case: 32 clients / 0.1 s = 320 requests/s ideal


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (for CI): tiny counts")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of each measurement (default 3, quick 1)")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="upstream latency in seconds for the concurrency-1 and memory runs (default 0)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    arguments = parser.parse_args(argv)
    arguments.repeats = arguments.repeats or (1 if arguments.quick else 3)
    if arguments.repeats < 1:
        parser.error("--repeats must be at least 1")
    return arguments


def measure(arguments: argparse.Namespace, log_dir: Path) -> dict:
    """Run every measurement; return the median and runs of every figure."""
    sizes = phases.QUICK if arguments.quick else phases.FULL
    repeats: list[dict] = []
    with UpstreamProcess(arguments.latency) as fast, UpstreamProcess(LOAD_LATENCY_SECONDS) as slow:
        with start_service(fast, log_dir, "memory-and-latency") as server:
            growth = phases.worker_rss(server, sizes)
            repeats = [phases.added_latency(server, fast, sizes) for _ in range(arguments.repeats)]
        with start_service(fast, log_dir, "large-image") as server:
            phases.warm_up(server, sizes)
            for repeat in repeats:
                repeat.update(phases.large_image_cost(server, fast, sizes))
        with start_service(slow, log_dir, "load") as server:
            phases.warm_up(server, sizes)
            for repeat in repeats:
                repeat.update(phases.load(server, slow, sizes))
                repeat.update(phases.fan_out(server, sizes))
        cache_sizes = cache.QUICK if arguments.quick else cache.FULL
        for repeat in repeats:
            repeat.update(baseline.added_latency(fast, log_dir, sizes))
            repeat.update(baseline.throughput(slow, log_dir, sizes))
            repeat.update(surfaces.added_latency(fast, log_dir, sizes))
            repeat.update(key_limits.added_latency(fast, log_dir, sizes))
            repeat.update(key_limits.throughput(slow, log_dir, sizes))
            repeat.update(cache.hit_latency(fast, log_dir, cache_sizes))
            repeat.update(cache.batch_twice(slow, log_dir, cache_sizes))
            repeat.update(cache.identical_at_once(log_dir, cache_sizes))
            repeat.update(cache.dead_first_model(fast, log_dir, cache_sizes))
    repeats[0].update(growth)  # one growth run: it is the 10,000 requests themselves
    for repeat in repeats:
        repeat.update(measure_capacity(arguments, log_dir))
    return report.medians(repeats)


def measure_capacity(arguments: argparse.Namespace, log_dir: Path) -> dict:
    """Bursts, fan-out burst, memory in flight, hung upstream and stalls: one repeat of each."""
    sizes = capacity.QUICK if arguments.quick else capacity.FULL
    figures = {}
    with BurstUpstreamProcess(sizes.burst_latency) as slow, BurstUpstreamProcess(sizes.fanout_latency) as fanout:
        with start_service(slow, log_dir, "bursts") as server:
            figures.update(capacity.bursts(server, slow, sizes))
            figures.update(capacity.memory_in_flight(server, slow, sizes))
        with start_service(fanout, log_dir, "fan-out-burst") as server:
            figures.update(capacity.fan_out_burst(server, fanout, sizes))
    with BurstUpstreamProcess(0, hang=True) as hung, BurstUpstreamProcess(0.01) as router:
        deadline = str(sizes.hung_deadline)
        with start_service(hung, log_dir, "hung", router=router, TEXT_DEADLINE_SECONDS=deadline) as server:
            figures.update(capacity.hung_upstream(server, sizes))
    report = log_dir / "stall-probe"
    with (
        UpstreamProcess(0) as fast,
        start_service(
            fast, log_dir, "stall", config=capacity.STALL_PROBE_CONFIG, WEB_CONCURRENCY="1", STALL_REPORT=str(report)
        ) as server,
    ):
        phases.warm_up(server, phases.QUICK)
        figures.update(capacity.stall(server, sizes))
    stretches = capacity.stall_probe_report(report)
    figures["stall.longest_stretch_ms"] = stretches[0]
    figures["stall.tenth_longest_stretch_ms"] = stretches[min(9, len(stretches) - 1)]
    for path in report.parent.glob(f"{report.name}.*"):
        path.unlink()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and write the JSON."""
    arguments = parse_arguments(argv)
    ensure_wrk()
    started = time.monotonic()
    context = {
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": arguments.quick,
        "repeats": arguments.repeats,
        "upstream_latency_seconds": arguments.latency,
        "load_latency_seconds": LOAD_LATENCY_SECONDS,
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="tmp-bench-") as log_dir:
        measured = measure(arguments, Path(log_dir))
    context["seconds"] = round(time.monotonic() - started, 1)
    context["load_average_after"] = machine()["load_average"]
    document = report.build(measured, context)
    report.write(document, arguments.out)
    print(report.table(document))
    info = document["machine"]
    print(
        f"\n{info['cores']} cores, {info['memory_gb']} GB, {info['cpu']}; Python {info['python']}, "
        f"gunicorn {info['gunicorn']}; load {info['load_average']}; {context['seconds']} s; "
        f"JSON in {arguments.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
