"""Prometheus metrics: what is measured, how it is recorded, and how every worker's share is exposed
(the workers share their values through files: service/telemetry/metrics_sharing.py).
"""

import threading
from functools import lru_cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

from service.telemetry.metrics_sharing import multiprocess_directory

NO_LABEL = "none"
# An unknown task or path under /api/: its name is the caller's, so it never becomes a label.
UNKNOWN = "unknown"

# A caller's model_name may be any Hub id: one series per id would grow without bound.
OTHER_MODEL = "other"

SUCCESS = "success"
RETRY = "retry"
GIVE_UP = "give_up"

# From a rejected body (milliseconds) to an image at the end of its 90 s deadline.
REQUEST_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120)
UPSTREAM_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90)


class GatewayMetrics:
    """The service's metric families."""

    def __init__(self, registry=REGISTRY):
        self.requests = Counter(
            "hf_gateway_requests",
            "Inference requests answered, by task, model and status.",
            ["task", "model", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "hf_gateway_request_duration_seconds",
            "Time to answer an inference request, by task.",
            ["task"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.requests_in_flight = Gauge(
            "hf_gateway_requests_in_flight",
            "Inference requests being handled now, across live workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.upstream_attempts = Counter(
            "hf_gateway_upstream_attempts",
            "Upstream HTTP attempts, by outcome (success, retry, give_up) and the error that caused a retry or give-up.",
            ["outcome", "reason"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "hf_gateway_upstream_attempt_duration_seconds",
            "Time one upstream HTTP attempt took, body included.",
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.refused = Counter(
            "hf_gateway_refused",
            "Requests refused by a key's limits, by policy (rpm, concurrency, results, images).",
            ["policy"],
            registry=registry,
        )
        self.store_errors = Counter(
            "hf_gateway_store_errors",
            "Store operations that failed (the request was served without them), by operation.",
            ["operation"],
            registry=registry,
        )
        self.store_skipped = Counter(
            "hf_gateway_store_skipped",
            "Store operations not tried because the store failed less than a second before.",
            ["operation"],
            registry=registry,
        )
        self.store_available = Gauge(
            "hf_gateway_store_available",
            "1 when every live worker can use the store (limits, ledger, cache, breakers), else 0.",
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.cache = Counter(
            "hf_gateway_cache",
            "Answer cache: hits, misses, calls that waited on an identical one (coalesced), answers kept "
            "(stored) and answers too large to keep.",
            ["outcome"],
            registry=registry,
        )
        self.breaker_opens = Counter(
            "hf_gateway_breaker_opens",
            "Times a target's circuit breaker opened (or opened again after a failed probe), by model.",
            ["model"],
            registry=registry,
        )
        self.breaker_skips = Counter(
            "hf_gateway_breaker_skipped",
            "Calls not made because the target's circuit breaker was open, by model.",
            ["model"],
            registry=registry,
        )
        self.model_task_unknown = Counter(
            "hf_gateway_model_task_unknown",
            "Requests naming a model whose task the Hub could not say in time (MODEL_TASK_UNKNOWN "
            "decides), by what was done: called or refused.",
            ["decision"],
            registry=registry,
        )
        self.configuration_broken = Gauge(
            "hf_gateway_configuration_broken",
            "1 while the configuration files on disk cannot be loaded (the workers serve the one accepted "
            "at start or at the last reload), else 0.",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.ledger_rows_lost = Counter(
            "hf_gateway_ledger_rows_lost",
            "Ledger rows dropped because the store stayed away longer than a worker can keep them.",
            registry=registry,
        )


_lock = threading.Lock()
_families = None


def families() -> GatewayMetrics:
    """Return this process's metric families, built on first use.

    Not at import: gunicorn's master imports the service before its hooks switch on
    multiprocess mode, and a value created then would stay private to one process.
    """
    global _families
    if _families is None:
        with _lock:
            if _families is None:
                _families = GatewayMetrics()
    return _families


def request_started() -> None:
    """Count one more inference request in flight."""
    families().requests_in_flight.inc()


def request_finished() -> None:
    """Count one inference request fewer in flight."""
    families().requests_in_flight.dec()


def record_request(task: str | None, model: str | None, status: int, seconds: float) -> None:
    """Count one answered inference request and observe how long it took."""
    task = task or NO_LABEL
    families().requests.labels(task=task, model=model or NO_LABEL, status=str(status)).inc()
    families().request_duration.labels(task=task).observe(seconds)


def record_upstream_attempt(seconds: float) -> None:
    """Observe how long one upstream attempt took, whatever its outcome."""
    families().upstream_duration.observe(seconds)


def count_upstream_outcome(outcome: str, reason: str = "") -> None:
    """Count how one upstream attempt ended: success, retry or give_up, with the error's type."""
    families().upstream_attempts.labels(outcome=outcome, reason=reason).inc()


def upstream_failure_reason(exc: BaseException) -> str:
    """Name an upstream failure by the service's error type (the class name for anything else)."""
    return getattr(exc, "error_type", type(exc).__name__)


def model_label(model: str | None, catalog) -> str | None:
    """Name a configured model as itself, and any other model a caller asked for as 'other'."""
    if model is None or model in configured_model_ids(catalog):
        return model
    return OTHER_MODEL


@lru_cache(maxsize=8)
def configured_model_ids(catalog) -> frozenset:
    """Return the Hub ids of every model the configuration names."""
    chains = [*catalog.task_targets.values(), *catalog.pairs.values()]
    return frozenset(target.id for chain in chains for target in chain) | {m.id for m in catalog.models.values()}


def count_cache(outcome: str) -> None:
    """Count a cache lookup or keeping: hit, miss, coalesced, stored, too_large."""
    families().cache.labels(outcome=outcome).inc()


def count_breaker_open(model: str) -> None:
    families().breaker_opens.labels(model=model).inc()


def count_breaker_skip(model: str) -> None:
    families().breaker_skips.labels(model=model).inc()


def count_model_task_unknown(decision: str) -> None:
    """Count a request whose model's task was not known in time: `call` or `refuse`."""
    families().model_task_unknown.labels(decision=decision).inc()


def count_refused(policy: str) -> None:
    """Count one request refused by a key's limit."""
    families().refused.labels(policy=policy).inc()


def count_store_error(operation: str) -> None:
    families().store_errors.labels(operation=operation).inc()


def count_store_skip(operation: str) -> None:
    families().store_skipped.labels(operation=operation).inc()


def set_store_available(available: bool) -> None:
    families().store_available.set(1 if available else 0)


def set_configuration_broken(broken: bool) -> None:
    families().configuration_broken.set(1 if broken else 0)


def count_ledger_rows_lost() -> None:
    families().ledger_rows_lost.inc()


def render(accept_header: str | None) -> tuple[bytes, str]:
    """Return the exposition of every live and dead worker's metrics, and its content type."""
    families()
    registry = REGISTRY
    if multiprocess_directory():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type
