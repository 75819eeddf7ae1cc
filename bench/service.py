"""The service under gunicorn with the real gunicorn.conf.py and its default settings."""

from __future__ import annotations

from pathlib import Path

from bench.upstream import ReadyProcess
from service.settings import variables
from tests.support.gunicorn_server import GunicornServer

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
    """Start a fresh service in front of `upstream`, logging to log_dir/name.log."""
    env = service_environment(upstream, router, **overrides)
    return GunicornServer(env=env, log_path=log_dir / f"{name}.log", config=config).start(timeout=60)
