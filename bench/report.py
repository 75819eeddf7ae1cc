"""The result: figures beside their targets, as a printed table and as JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One reported figure: its key in the measurements, how to show it, and its target if any."""

    key: str
    label: str
    unit: str
    target: float | None = None
    at_least: bool = False  # the target is a floor, not a ceiling
    full_only: bool = False  # measured only by a full run (--quick runs smaller bursts)

    def target_text(self) -> str:
        """Show the target, e.g. '<= 1.0 ms'."""
        if self.target is None:
            return ""
        return f"{'>=' if self.at_least else '<='} {self.target:g} {self.unit}".rstrip()

    def met(self, value: float) -> bool | None:
        """Tell whether a value reaches the target (None without a target)."""
        if self.target is None:
            return None
        return value >= self.target if self.at_least else value <= self.target


FIGURES = (
    Figure("added_p50_ms.translation", "added latency p50, c=1, translation", "ms", 1.0),
    Figure("added_p99_ms.translation", "added latency p99, c=1, translation", "ms", 3.0),
    Figure("added_p50_ms.text_to_image", "added latency p50, c=1, text-to-image (25 KB)", "ms"),
    Figure("added_p99_ms.text_to_image", "added latency p99, c=1, text-to-image (25 KB)", "ms"),
    Figure("direct_p50_ms.translation", "upstream alone p50, c=1, translation", "ms"),
    Figure("baseline.gateway_added_p50_ms", "added p50, c=1: the gateway, beside the minimal app", "ms"),
    Figure("baseline.minimal_added_p50_ms", "added p50, c=1: minimal Flask + requests app, same worker", "ms"),
    Figure("baseline.added_p50_ratio", "added p50, c=1: gateway / minimal app", "x", 1.10),
    Figure("baseline.gateway_rps_c16", "requests/s, c=16, upstream 100 ms: the gateway", "/s"),
    Figure("baseline.minimal_rps_c16", "requests/s, c=16, upstream 100 ms: the minimal app", "/s"),
    Figure("baseline.throughput_ratio_c16", "requests/s, c=16: gateway / minimal app", "x", 0.90, at_least=True),
    Figure("surfaces.hub.native_added_p50_ms", "added p50, c=1: translation on one model via /api/infer", "ms"),
    Figure("surfaces.hub.added_p50_ms", "added p50, c=1: the same via the Hub's API, POST /models/<id>", "ms"),
    Figure("surfaces.hub.added_p50_ratio", "added p50, c=1: Hub's API / /api/infer, same translation", "x", 1.10),
    Figure("surfaces.openai.native_added_p50_ms", "added p50, c=1: chat model via /api/infer/text-to-text", "ms"),
    Figure("surfaces.openai.added_p50_ms", "added p50, c=1: the same via the OpenAI API, /v1/chat/completions", "ms"),
    Figure("surfaces.openai.added_p50_ratio", "added p50, c=1: OpenAI API / /api/infer, same chat call", "x", 1.10),
    Figure("added_p99_ms.c16", "added p99, c=16, upstream 100 ms", "ms", 10.0),
    Figure("added_p99_ms.c64", "added p99, c=64, upstream 100 ms", "ms", 30.0),
    Figure("throughput_efficiency.c32", "throughput / ideal 320/s, c=32, upstream 100 ms", "", 0.90, at_least=True),
    Figure("requests_per_second.c32", "requests/s, c=32 (upstream alone below)", "/s"),
    Figure("direct_requests_per_second.c32", "requests/s, c=32, upstream alone", "/s"),
    Figure("fanout_ratio", "fan-out: time num_sentences 5 / 1, upstream 100 ms", "", 1.3),
    Figure("large_image.added_p50_ms", "1.5 MB image: added time p50", "ms", 25.0),
    Figure(
        "large_image.extra_peak_ratio", "1.5 MB image: extra peak worker memory / image size (median request)", "x", 3.0
    ),
    Figure("large_image.extra_peak_mb", "1.5 MB image: extra peak worker memory (median request)", "MB"),
    Figure("large_image.extra_peak_max_mb", "1.5 MB image: extra peak worker memory (worst request)", "MB"),
    Figure("limits.added_p50_ms.off", "added latency p50, c=1, STORE=off (no limits, no ledger)", "ms"),
    Figure("limits.added_p50_ms.sqlite", "added latency p50, c=1, every limit + ledger on SQLite", "ms"),
    Figure("limits.added_p50_ms.redis", "added latency p50, c=1, every limit + ledger on Redis", "ms"),
    Figure("limits.extra_p50_ms.sqlite", "limits + ledger on SQLite: extra p50 over STORE=off", "ms"),
    Figure("limits.extra_p50_ms.redis", "limits + ledger on Redis: extra p50 over STORE=off", "ms", 0.3),
    Figure("limits.requests_per_second.off", "requests/s, c=32, upstream 100 ms, STORE=off", "/s"),
    Figure("limits.requests_per_second.sqlite", "requests/s, c=32, limits + ledger on SQLite", "/s"),
    Figure("limits.requests_per_second.redis", "requests/s, c=32, limits + ledger on Redis", "/s"),
    Figure("limits.throughput_drop_pct.sqlite", "limits + ledger on SQLite: throughput drop at c=32", "%"),
    Figure("limits.throughput_drop_pct.redis", "limits + ledger on Redis: throughput drop at c=32", "%", 5.0),
    Figure("cache.hit_p50_ms", "cache hit, c=1: whole request p50 (end to end)", "ms", 1.0),
    Figure("cache.hit_p99_ms", "cache hit, c=1: whole request p99", "ms"),
    Figure("cache.direct_p50_ms", "the same call straight to the upstream, p50", "ms"),
    Figure("cache.batch_first_s", "hf-infer batch of 1,000 titles, first run (upstream 100 ms)", "s"),
    Figure("cache.batch_second_s", "the same batch again", "s"),
    Figure("cache.batch_ratio", "second run / first run", "x", 0.1),
    Figure("cache.batch_second_upstream_calls", "upstream calls of the second run", "", 0.0),
    Figure("cache.batch_identical", "second run's output byte-identical (1 = yes)", "", 1.0, at_least=True),
    Figure("coalescing.upstream_calls", "50 identical requests at once, upstream 2 s: upstream calls", "", 1.0),
    Figure("coalescing.max_s", "50 identical requests at once: slowest answer", "s"),
    Figure("coalescing.errors", "50 identical requests at once: errors", "", 0.0),
    Figure("breaker.before_p50_s", "first model never answers (deadline 4 s): p50 before its breaker opens", "s"),
    Figure("breaker.after_p50_ms", "the same, after it opened: p50", "ms"),
    Figure("breaker.second_model_alone_p50_ms", "the second model alone, p50", "ms"),
    Figure("breaker.after_over_second_model_ms", "after it opened: p50 over the second model's own", "ms", 5.0),
    Figure("rss_idle_mb", "worker RSS idle (largest worker)", "MB", 80.0),
    Figure("rss_growth_pct", "worker RSS growth after the growth run", "%", 10.0),
    *(
        figure
        for count, target in ((128, None), (512, None), (1024, 1.25), (4096, None))
        for figure in (
            Figure(f"burst.{count}.p50_s", f"burst N={count}, upstream 2 s: p50", "s", full_only=True),
            Figure(f"burst.{count}.p99_s", f"burst N={count}: p99 (upstream alone below)", "s", full_only=True),
            Figure(f"burst.{count}.direct_p99_s", f"burst N={count}: upstream alone p99", "s", full_only=True),
            Figure(f"burst.{count}.ratio", f"burst N={count}: p99 / upstream alone p99", "x", target, full_only=True),
            Figure(
                f"burst.{count}.errors", f"burst N={count}: errors", "", 0.0 if count == 1024 else None, full_only=True
            ),
        )
    ),
    Figure("fanout_burst.p99_s", "fan-out burst 128 x num_sentences 10, upstream 1 s: p99", "s"),
    Figure("fanout_burst.direct_p99_s", "fan-out burst: upstream alone p99, one call per client", "s"),
    Figure("fanout_burst.ratio", "fan-out burst: p99 / upstream alone p99", "x", 1.5),
    Figure("fanout_burst.errors", "fan-out burst: errors", "", 0.0),
    Figure("hung.answered_504", "hung upstream, 1,000 requests: answered 504", ""),
    Figure(
        "hung.worst_over_deadline_s", "hung upstream: slowest answer past its deadline, as the client saw it", "s", 1.0
    ),
    Figure(
        "hung.worst_service_time_over_deadline_s",
        "hung upstream: slowest answer past its deadline, in the service's log",
        "s",
    ),
    Figure("hung.next_request_ok", "hung upstream: next request served (1 = yes)", "", 1.0, at_least=True),
    Figure("memory.in_flight_mb", "worker RSS with 1,000 requests in flight (largest worker)", "MB", 150.0),
    Figure("memory.after_vs_idle_pct", "worker RSS after the burst vs idle before", "%", 10.0),
    Figure(
        "stall.longest_stretch_ms",
        "1.5 MB images passing: longest CPU stretch of one request without a turn for the others",
        "ms",
        5.0,
    ),
    Figure("stall.tenth_longest_stretch_ms", "1.5 MB images passing: tenth longest such stretch", "ms"),
    Figure("stall.health_p50_alone_ms", "health check p50, worker idle", "ms"),
    Figure("stall.health_p99_with_images_ms", "health check p99 while 1.5 MB images pass (same worker)", "ms"),
)


def medians(repeats: list[dict]) -> dict:
    """Return, for every key measured, the median over repeats and the values of each repeat."""
    keys = sorted({key for repeat in repeats for key in repeat})
    return {
        key: {
            "median": statistics.median(r[key] for r in repeats if key in r),
            "runs": [r[key] for r in repeats if key in r],
        }
        for key in keys
    }


def machine() -> dict:
    """Describe the machine and the software the figures come from."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "cpu": model,
        "python": platform.python_version(),
        "gunicorn": metadata.version("gunicorn"),
        "flask": metadata.version("flask"),
        "load_average": os.getloadavg(),
    }


def build(measured: dict, context: dict) -> dict:
    """Assemble the JSON document: figures with targets, every measurement, and the context."""
    figures = {}
    for figure in FIGURES:
        entry = measured.get(figure.key)
        value = entry["median"] if entry else None
        figures[figure.key] = {
            "label": figure.label,
            "unit": figure.unit,
            "value": value,
            "target": figure.target_text() or None,
            "met": figure.met(value) if value is not None else None,
            "runs": entry["runs"] if entry else [],
        }
    return {**context, "figures": figures, "measurements": measured}


def table(document: dict) -> str:
    """Render the figures as a Markdown table."""
    rows = ["| figure | median | target | met | runs |", "| --- | ---: | --- | --- | --- |"]
    for figure in document["figures"].values():
        value = "n/a" if figure["value"] is None else f"{figure['value']:.3g}"
        met = {True: "yes", False: "**no**", None: ""}[figure["met"]]
        runs = ", ".join(f"{run:.3g}" for run in figure["runs"])
        rows.append(f"| {figure['label']} | {value} {figure['unit']} | {figure['target'] or ''} | {met} | {runs} |")
    return "\n".join(rows)


def write(document: dict, path: Path) -> None:
    """Write the JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
