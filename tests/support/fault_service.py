"""Shared set-up for fault, load and lifecycle runs: a gunicorn service with short deadlines,
single-target model chains and a recognisable token, plus a stream of client requests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import requests

from harness.catalogs import LANGUAGES, task_routes
from harness.service import service_env

# Recognisable, so that any leak into a log line, body or header is found by a plain search.
TOKEN = "hf_fault-suite-not-a-real-token-9876543210"
TEXT_DEADLINE = 4.0
IMAGE_DEADLINE = 4.0
MAX_IMAGE_BYTES = 1024 * 1024
WORKERS = 2
TRANSLATION_PATH = "/hf-inference/models/t5-base"
IMAGE_PATH = "/hf-inference/models/CompVis/stable-diffusion-v1-4"
TRANSLATION_BODY = '{"inputs": "连衣裙"}'.encode()

# One target per task (all of them recorded), so a fault costs exactly one model's attempts.
SINGLE_TARGET_MODELS = LANGUAGES + task_routes(zh2en=("t5-base",), text_to_text=("google/flan-t5-xxl",))


def write_models_config(directory: Path) -> Path:
    """Write the single-target model configuration and return its path."""
    path = Path(directory) / "models.toml"
    path.write_text(SINGLE_TARGET_MODELS, encoding="utf-8")
    return path


def fault_env(upstream, models_config: Path, **overrides) -> dict:
    """Environment with short deadlines, a small image limit and single-target chains."""
    values = dict(
        HF_API_TOKEN=TOKEN,
        TEXT_DEADLINE_SECONDS=str(TEXT_DEADLINE),
        IMAGE_DEADLINE_SECONDS=str(IMAGE_DEADLINE),
        MAX_IMAGE_BYTES=str(MAX_IMAGE_BYTES),
        MODELS_CONFIG=str(models_config),
        WEB_CONCURRENCY=str(WORKERS),
    )
    values.update(overrides)
    return service_env(upstream, **values)


def booted_workers(server, count: int = WORKERS, timeout: float = 20.0) -> list:
    """Wait until the master has `count` workers (the health check answers after the first)."""
    deadline = time.monotonic() + timeout
    while len(pids := server.worker_pids()) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} workers, found {pids}:\n{server.log_tail()}")
        time.sleep(0.05)
    return pids


class RequestStream:
    """Client threads posting translations back to back, each on its own keep-alive session."""

    def __init__(self, url: str, concurrency: int = 4, limit: int | None = None):
        self.url = f"{url}/api/infer/text-translation"
        self.limit = limit
        self.outcomes: Counter = Counter()
        self.failures: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(concurrency)]

    def __enter__(self) -> RequestStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def total(self) -> int:
        """Return how many requests have ended so far."""
        with self._lock:
            return sum(self.outcomes.values())

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` requests have ended."""
        deadline = time.monotonic() + timeout
        while self.total < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        """Send requests until stopped or the limit is reached."""
        with requests.Session() as session:
            while not self._stop.is_set() and (self.limit is None or self.total < self.limit):
                self._record(self._send(session))

    def _send(self, session: requests.Session) -> str:
        """Send one request and name its outcome: 'ok', or what went wrong."""
        try:
            response = session.post(self.url, data=TRANSLATION_BODY, timeout=30)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code == 200 and response.json().get("code") == 0:
            return "ok"
        return f"HTTP {response.status_code}: {response.text[:200]}"

    def _record(self, outcome: str) -> None:
        """Count an outcome, keeping the failures' details."""
        with self._lock:
            self.outcomes["ok" if outcome == "ok" else "failed"] += 1
            if outcome != "ok":
                self.failures.append(outcome)


def start_fault_service(upstream, directory: Path, worker_class: str, **overrides):
    """Start gunicorn in front of `upstream` with the fault environment, its log and model file in
    `directory`, and wait for all its workers (kept as `initial_workers`)."""
    from harness.gunicorn_server import GunicornServer

    env = fault_env(upstream, write_models_config(directory), WORKER_CLASS=worker_class, **overrides)
    server = GunicornServer(env=env, log_path=Path(directory) / "service.log").start()
    server.initial_workers = booted_workers(server)
    return server
