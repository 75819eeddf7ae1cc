"""The service under gunicorn with the real gunicorn.conf.py and its default settings."""

from __future__ import annotations

from pathlib import Path

from tests.support.gunicorn_server import GunicornServer

from bench.upstream import UpstreamProcess

# A made-up token: the loopback upstream accepts anything, and it must never be a real one.
BENCH_TOKEN = "hf_bench-not-a-real-token-0123456789"
# Unset so that gunicorn.conf.py and Settings choose, as in production.
DEFAULTED = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "MAX_REQUESTS", "FANOUT_CONCURRENCY",
             "UPSTREAM_POOL_SIZE", "TEXT_DEADLINE_SECONDS", "IMAGE_DEADLINE_SECONDS",
             "API_KEYS", "API_KEYS_FILE", "MODELS_CONFIG", "ACCESS_LOG", "LOG_LEVEL")


def service_environment(upstream: UpstreamProcess) -> dict:
    """Environment of a service talking only to the loopback upstream, everything else defaulted."""
    env = {name: None for name in DEFAULTED}
    env.update(
        HF_API_TOKEN=BENCH_TOKEN,
        HF_API_BASE=f"{upstream.url}/hf-inference/models",
        HF_ROUTER_BASE=f"{upstream.url}/v1",
    )
    return env


def start_service(upstream: UpstreamProcess, log_dir: Path, name: str) -> GunicornServer:
    """Start a fresh service in front of `upstream`, logging to log_dir/name.log."""
    return GunicornServer(env=service_environment(upstream), log_path=log_dir / f"{name}.log").start(timeout=60)
