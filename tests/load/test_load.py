"""A bounded load run through the real gunicorn process: no errors, no memory growth.

Prints its figures (run with -s to see them) and writes them to load-figures.json in the
test's temporary folder. LOAD_REQUESTS and LOAD_CONCURRENCY change the size of the run.
"""

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.upstream import LoopbackUpstream
from tests.support.fault_service import (
    TOKEN,
    TRANSLATION_BODY,
    booted_workers,
    fault_env,
    write_models_config,
)

REQUESTS = int(os.environ.get("LOAD_REQUESTS", 2000))
CONCURRENCY = int(os.environ.get("LOAD_CONCURRENCY", 32))
WARM_UP_REQUESTS = 200
UPSTREAM_LATENCY = 0.05
RSS_SAMPLE_SECONDS = 0.1
# Resident memory of the second half may differ from the first by at most this share.
RSS_TOLERANCE = 0.10


class RssSampler:
    """Samples the workers' total resident memory, tagged with how far the run had got."""

    def __init__(self, server: GunicornServer, progress):
        self.server = server
        self.progress = progress
        self.samples: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        """Take a sample every RSS_SAMPLE_SECONDS."""
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self.samples.append((self.progress(), sum(self.server.worker_rss_kb().values())))

    def halves(self) -> tuple:
        """Return the mean RSS (kB) of the first and the second half of the run."""
        first = [rss for done, rss in self.samples if done < REQUESTS / 2]
        second = [rss for done, rss in self.samples if done >= REQUESTS / 2]
        return statistics.mean(first), statistics.mean(second)


class LoadRun:
    """REQUESTS translations at CONCURRENCY, one keep-alive session per client thread."""

    def __init__(self, url: str):
        self.url = f"{url}/api/infer/text-translation"
        self.latencies: list = []
        self.failures: list = []
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        """Return how many requests have ended."""
        return len(self.latencies) + len(self.failures)

    def run(self, count: int) -> float:
        """Send `count` requests and return the wall-clock seconds it took."""
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda _: self._one(), range(count)))
        return time.perf_counter() - started

    def _session(self) -> requests.Session:
        """Return this client thread's session."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _one(self) -> None:
        """Send one request and record its latency or what went wrong."""
        started = time.perf_counter()
        try:
            response = self._session().post(self.url, data=TRANSLATION_BODY, timeout=30)
            outcome = "ok" if response.status_code == 200 and response.json()["code"] == 0 else response.text[:200]
        except requests.RequestException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if outcome == "ok":
                self.latencies.append(time.perf_counter() - started)
            else:
                self.failures.append(outcome)


def figures(run: LoadRun, seconds: float, sampler: RssSampler) -> dict:
    """Summarise a load run."""
    first_half, second_half = sampler.halves()
    percentiles = statistics.quantiles(run.latencies, n=100)
    return {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "upstream_latency_ms": UPSTREAM_LATENCY * 1000,
        "errors": len(run.failures),
        "seconds": round(seconds, 2),
        "requests_per_second": round(REQUESTS / seconds, 1),
        "p50_ms": round(statistics.median(run.latencies) * 1000, 1),
        "p99_ms": round(percentiles[98] * 1000, 1),
        "max_ms": round(max(run.latencies) * 1000, 1),
        "workers_rss_first_half_kb": round(first_half),
        "workers_rss_second_half_kb": round(second_half),
        "rss_change": round((second_half - first_half) / first_half, 4),
        "rss_samples": len(sampler.samples),
    }


@pytest.fixture
def loaded_service(tmp_path):
    with LoopbackUpstream(latency=UPSTREAM_LATENCY) as loopback:
        env = fault_env(loopback, write_models_config(tmp_path))
        with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
            server.initial_workers = booted_workers(server)
            yield server


def test_load_has_no_errors_and_no_memory_growth(loaded_service, tmp_path):
    LoadRun(loaded_service.url).run(WARM_UP_REQUESTS)  # threads, sessions and pools reach their size
    run = LoadRun(loaded_service.url)
    with RssSampler(loaded_service, lambda: run.done) as sampler:
        seconds = run.run(REQUESTS)
    result = figures(run, seconds, sampler)
    print("\nload figures:", json.dumps(result))
    (tmp_path / "load-figures.json").write_text(json.dumps(result, indent=2))

    assert run.failures == []
    assert len(run.latencies) == REQUESTS
    assert abs(result["rss_change"]) <= RSS_TOLERANCE, result
    assert loaded_service.worker_pids() == loaded_service.initial_workers
    log = loaded_service.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log
