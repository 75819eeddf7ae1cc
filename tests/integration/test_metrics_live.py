"""GET /metrics adds up every worker's counts, through real gunicorn workers and their deaths."""

import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from harness.gunicorn_server import GunicornServer
from harness.service import service_env
from harness.upstream import MODEL_API_PREFIX, Step

MADLAD = "/hf-inference/models/google/madlad400-3b-mt"
TRANSLATION = "/api/infer/text-translation"
MISSING_MODEL = "this-model-does-not-exist-123"
ROUNDS = 4  # at most this many mixed batches to see both workers serve
WAIT_SECONDS = 10


class Scrape:
    """Metric samples, read with prometheus_client's own parser or multiprocess reader."""

    def __init__(self, families):
        self.samples = [sample for family in families for sample in family.samples]

    def value(self, name: str, **labels) -> float:
        """Return the sample with exactly these labels, 0 when absent."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        return found[0] if found else 0.0

    def total(self, name: str, **labels) -> float:
        """Sum every sample of `name` whose labels include `labels`."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())


def scrape(server) -> Scrape:
    """Scrape the service's /metrics."""
    response = requests.get(f"{server.url}/metrics", timeout=5)
    assert response.status_code == 200
    return Scrape(text_string_to_metric_families(response.text))


def per_worker(directory: Path, kind: str, pid: int) -> Scrape:
    """Read one worker's own metrics file (kind: counter, gauge_livesum, histogram)."""
    path = directory / f"{kind}_{pid}.db"
    return Scrape(MultiProcessCollector.merge([str(path)]) if path.exists() else [])


def wait_for(condition, what: str):
    """Poll `condition` until it returns something truthy, or fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def translate(server, body='{"inputs": "连衣裙"}', **params) -> int:
    return requests.post(server.url + TRANSLATION, data=body.encode(), params=params, timeout=20).status_code


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def worker_class(request):
    """The multiprocess metrics are checked under both worker classes."""
    return request.param


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory, worker_class):
    return tmp_path_factory.mktemp(f"prometheus-multiproc-{worker_class}")


@pytest.fixture(scope="module")
def two_workers(loopback, tmp_path_factory, metrics_dir, worker_class):
    log_path = tmp_path_factory.mktemp("gunicorn-metrics") / "service.log"
    env = service_env(
        loopback, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), WORKER_CLASS=worker_class
    )
    with GunicornServer(env=env, log_path=log_path) as server:
        yield server


def run_mixed_batch(server, loopback, sent: dict) -> None:
    """Send slow successes, caller errors and unknown models at once, tallying what was sent."""
    loopback.script(MADLAD, Step(replay=True, delay=0.3, repeat=6))
    jobs = [lambda: translate(server)] * 6
    jobs += [lambda: translate(server, body='{"inputs": ""}')] * 3
    jobs += [lambda: translate(server, model_name=MISSING_MODEL)] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        for status in pool.map(lambda job: job(), jobs):
            sent[status] = sent.get(status, 0) + 1
    loopback.wait_idle()


def requests_by_worker(server, directory: Path) -> dict:
    """Return how many inference requests each current worker has counted in its own file."""
    return {
        pid: per_worker(directory, "counter", pid).total("hf_gateway_requests_total") for pid in server.worker_pids()
    }


def test_counts_add_up_across_two_workers(two_workers, upstream, metrics_dir):
    sent = {}
    for _ in range(ROUNDS):
        run_mixed_batch(two_workers, upstream, sent)
        if all(requests_by_worker(two_workers, metrics_dir).values()):
            break
    by_worker = requests_by_worker(two_workers, metrics_dir)
    assert len(by_worker) == 2 and all(by_worker.values()), f"one worker served everything: {by_worker}"

    # One success that needed a retry: the model is loading once, then answers.
    upstream.script(MADLAD, Step(status=503, json={"error": "Model is currently loading", "estimated_time": 0.2}))
    assert translate(two_workers) == 200
    sent[200] += 1
    upstream.wait_idle()

    total = sum(sent.values())
    metrics = scrape(two_workers)
    assert set(sent) == {200, 400, 404}
    assert metrics.total("hf_gateway_requests_total") == total
    assert sum(requests_by_worker(two_workers, metrics_dir).values()) == total
    assert (
        metrics.value(
            "hf_gateway_requests_total", task="text-translation", model="google/madlad400-3b-mt", status="200"
        )
        == sent[200]
    )
    assert metrics.value("hf_gateway_requests_total", task="text-translation", model="none", status="400") == sent[400]
    assert metrics.value("hf_gateway_requests_total", task="text-translation", model="other", status="404") == sent[404]
    assert metrics.value("hf_gateway_request_duration_seconds_count", task="text-translation") == total

    # The inference calls; a named model's task lookup (the Hub's model API) is no attempt of a request.
    upstream_calls = sum(not entry.path.startswith(MODEL_API_PREFIX) for entry in upstream.requests)
    assert metrics.value("hf_gateway_upstream_attempts_total", outcome="success", reason="") == sent[200]
    assert metrics.value("hf_gateway_upstream_attempts_total", outcome="retry", reason="model_unavailable") == 1
    assert metrics.value("hf_gateway_upstream_attempts_total", outcome="give_up", reason="model_not_found") == sent[404]
    assert metrics.total("hf_gateway_upstream_attempts_total") == upstream_calls == sent[200] + 1 + sent[404]
    assert metrics.value("hf_gateway_upstream_attempt_duration_seconds_count") == upstream_calls
    assert metrics.value("hf_gateway_requests_in_flight") == 0


def test_a_killed_worker_keeps_its_counts_and_leaves_flight(two_workers, upstream, metrics_dir):
    before = scrape(two_workers)
    upstream.script(MADLAD, Step(replay=True, delay=2.5))
    outcome = {}
    slow = threading.Thread(target=lambda: outcome.update(result=_try(lambda: translate(two_workers))))
    slow.start()
    wait_for(lambda: scrape(two_workers).value("hf_gateway_requests_in_flight") == 1, "the slow request in flight")
    busy = [
        pid
        for pid in two_workers.worker_pids()
        if per_worker(metrics_dir, "gauge_livesum", pid).value("hf_gateway_requests_in_flight") == 1
    ]
    assert len(busy) == 1

    os.kill(busy[0], signal.SIGKILL)
    slow.join(timeout=WAIT_SECONDS)
    assert isinstance(outcome["result"], requests.ConnectionError)  # its worker died under it
    wait_for(lambda: len(two_workers.worker_pids()) == 2 and busy[0] not in two_workers.worker_pids(), "a new worker")

    after = scrape(two_workers)
    assert after.value("hf_gateway_requests_in_flight") == 0
    for name in (
        "hf_gateway_requests_total",
        "hf_gateway_upstream_attempts_total",
        "hf_gateway_request_duration_seconds_count",
    ):
        assert after.total(name) == before.total(name), name

    upstream.wait_idle()
    assert [translate(two_workers) for _ in range(4)] == [200] * 4
    assert scrape(two_workers).total("hf_gateway_requests_total") == before.total("hf_gateway_requests_total") + 4


def _try(call):
    """Return what `call` returns, or the exception it raised."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc


def test_without_a_directory_gunicorn_makes_one_and_removes_it(loopback, tmp_path):
    env = service_env(loopback, WEB_CONCURRENCY="1", PROMETHEUS_MULTIPROC_DIR=None)
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
        assert translate(server, body='{"inputs": ""}') == 400
        assert (
            scrape(server).value("hf_gateway_requests_total", task="text-translation", model="none", status="400") == 1
        )
        directory = Path(re.search(r"metrics directory (\S+)", server.log_text()).group(1))
        assert any(directory.glob("counter_*.db"))
    assert not directory.exists()
