"""The service under gunicorn with the real gunicorn.conf.py and its default settings."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.upstream import ReadyProcess
from harness.gunicorn_server import GunicornServer
from service.settings import variables

# A made-up token: the loopback upstream accepts anything, and it must never be a real one.
BENCH_TOKEN = "hf_bench-not-a-real-token-0123456789"


def service_environment(upstream: ReadyProcess, router: ReadyProcess | None = None, **overrides: str) -> dict:
    """Environment of a service talking only to loopback upstreams, every other setting defaulted
    as in production (gunicorn.conf.py and Settings choose)."""
    env = {declared.metadata["variable"]: None for declared in variables()}
    env.update(API_KEYS_FILE=None, PROMETHEUS_MULTIPROC_DIR=None)
    # The figures of the upstream path are measured with identical requests: kept or coalesced,
    # they would measure the cache. The cache has figures of its own (bench/cache.py).
    env.update(CACHE_TTL_SECONDS="0")
    env.update(
        HF_API_TOKEN=BENCH_TOKEN,
        HF_API_BASE=f"{upstream.url}/hf-inference/models",
        HF_ROUTER_BASE=f"{(router or upstream).url}/v1",
        HF_HUB_API_BASE=f"{upstream.url}/api",
        **overrides,
    )
    return env


def start_service(
    upstream: ReadyProcess,
    log_dir: Path,
    name: str,
    router: ReadyProcess | None = None,
    config: Path | None = None,
    **overrides: str,
) -> GunicornServer:
    """Start a fresh service in front of `upstream`, in a folder of its own under log_dir: its log
    and its store start empty, so a cache, a breaker, a ledger or a log line left by one
    measurement (or one repeat) never shapes the next."""
    folder = fresh_folder(log_dir, name)
    overrides.setdefault("DATA_DIR", str(folder / "data"))
    env = service_environment(upstream, router, **overrides)
    return GunicornServer(env=env, log_path=folder / "service.log", config=config).start(timeout=60)


def fresh_folder(log_dir: Path, name: str) -> Path:
    """A new, empty folder under log_dir, named after what uses it."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=log_dir))
