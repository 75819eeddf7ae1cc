"""The answer cache, coalescing and circuit breakers across real processes: two gunicorn instances
behind the real nginx sharing one real redis-server, and `hf-infer batch` run twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.nginx_server import NginxServer
from harness.paths import REPO_ROOT
from harness.redis_server import RedisServer
from harness.upstream import Step
from tests.support.fault_service import SINGLE_TARGET_MODELS, TEXT_DEADLINE, TRANSLATION_PATH, fault_env
from tests.support.waiting import wait_until

DEAD_PATH = "/hf-inference/models/dead/model"
# zh2de: a model that never answers first, then the recorded one.
MODELS = SINGLE_TARGET_MODELS.replace('en = "English"', 'en = "English"\nde = "German"').replace(
    'zh2en = ["t5-base"]', 'zh2en = ["t5-base"]\nzh2de = ["dead/model", "t5-base"]'
)
CACHE_ON = {"CACHE_TTL_SECONDS": "3600", "BREAKER_FAILURES": "2", "BREAKER_OPEN_SECONDS": "60"}


def translate(url: str, inputs: str = "连衣裙", query: str = "", args: dict | None = None) -> requests.Response:
    body = {"inputs": inputs, "args": {"do_sample": False} if args is None else args}
    return requests.post(f"{url}/api/infer/text-translation{query}", json=body, timeout=30)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "models.toml"
    path.write_text(MODELS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_hosts(loopback, models, tmp_path_factory):
    """Two instances on one Redis with the cache and breakers on, behind nginx."""
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp_path_factory.mktemp("redis-cache")))
        env = fault_env(loopback, models, STORE="redis", REDIS_URL=redis.url, **CACHE_ON)
        hosts = [stack.enter_context(GunicornServer(env=env)) for _ in range(2)]
        proxy = stack.enter_context(NginxServer([host.port for host in hosts], tmp_path_factory.mktemp("nginx")))
        yield proxy, hosts


@pytest.fixture(scope="module")
def one_host(loopback, models, tmp_path_factory):
    """One instance of two workers on the embedded store, with the cache on."""
    with GunicornServer(env=fault_env(loopback, models, STORE="sqlite", **CACHE_ON)) as host:
        yield host


def test_an_answer_kept_through_one_host_is_a_hit_through_the_other(two_hosts, upstream):
    _, (first, second) = two_hosts
    made = translate(first.url, "跨主机")
    kept = translate(second.url, "跨主机")
    assert (made.headers["X-Cache"], kept.headers["X-Cache"]) == ("MISS", "HIT")
    assert made.json()["result"] == kept.json()["result"] and made.json()["model"] == kept.json()["model"]
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 1


def test_fifty_identical_requests_at_once_make_one_upstream_call(two_hosts, upstream):
    proxy, hosts = two_hosts
    upstream.script(TRANSLATION_PATH, Step(replay=True, delay=2.0))
    served_before = [served(host) for host in hosts]
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: translate(proxy.url, "同时五十个"), range(50)))
    assert [answer.status_code for answer in answers] == [200] * 50
    assert len({json.dumps(answer.json()["result"]) for answer in answers}) == 1
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 1
    assert all(served(host) > before for host, before in zip(hosts, served_before, strict=True))  # both took a share


def served(host) -> int:
    """Translations the host has answered so far, by its access log."""
    return host.log_text().count("path=/api/infer/text-translation")


def test_a_breaker_opened_through_one_host_skips_the_dead_model_in_the_other(two_hosts, upstream):
    _, (first, second) = two_hosts
    upstream.script(DEAD_PATH, Step(never_respond=True, repeat=10))
    sampled = {"do_sample": True}  # never kept: every request goes upstream
    for _ in range(2):  # each waits its half of the 4 s deadline on the dead model, then falls back
        answer = translate(first.url, query="?model_type=zh2de", args=sampled)
        assert answer.status_code == 200 and answer.json()["model"] == "t5-base"
    assert len(upstream.requests_for(DEAD_PATH)) == 2
    for host in (second, first):
        answer = translate(host.url, query="?model_type=zh2de", args=sampled)
        assert answer.status_code == 200 and answer.json()["model"] == "t5-base"
    assert len(upstream.requests_for(DEAD_PATH)) == 2  # skipped on both hosts
    routes = requests.get(f"{second.url}/api/models", timeout=30).json()["routes"]
    dead = next(t for route in routes for t in route["targets"] if t["model"] == "dead/model")
    assert dead["breaker"]["state"] == "open" and dead["breaker"]["failures"] == 2
    metrics = requests.get(f"{first.url}/metrics", timeout=10).text
    assert 'hf_gateway_breaker_opens_total{model="dead/model"} 1.0' in metrics


def run_batch(host, titles, output) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service", "batch", "--url", host.url, "--task", "text-translation"]
    command += ["--args", '{"do_sample": false}', "--concurrency", "8", str(titles), str(output)]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_a_catalogue_translated_twice_costs_nothing_the_second_time(one_host, upstream, tmp_path):
    titles = tmp_path / "titles.txt"
    titles.write_text("".join(f"连衣裙 第{number}号\n" for number in range(1000)), encoding="utf-8")
    first = run_batch(one_host, titles, tmp_path / "first.jsonl")
    assert first.returncode == 0, first.stderr
    calls = len(upstream.requests_for(TRANSLATION_PATH))
    assert calls == 1000
    second = run_batch(one_host, titles, tmp_path / "second.jsonl")
    assert second.returncode == 0, second.stderr
    assert len(upstream.requests_for(TRANSLATION_PATH)) == calls  # not one more upstream call
    assert (tmp_path / "first.jsonl").read_bytes() == (tmp_path / "second.jsonl").read_bytes()


@pytest.fixture(params=["gevent", "gthread"])
def one_worker(request, loopback, models, tmp_path):
    """One worker, so identical requests meet in it: they coalesce in the worker, not the store."""
    env = fault_env(loopback, models, STORE="sqlite", WEB_CONCURRENCY="1", WORKER_CLASS=request.param, **CACHE_ON)
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as host:
        yield host


def test_a_request_joining_a_call_that_times_out_makes_the_call_in_its_own_time(one_worker, upstream):
    upstream.script(TRANSLATION_PATH, Step(never_respond=True))  # the first call never answers
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(translate, one_worker.url, "迟到的第一个")
        assert wait_until(lambda: len(upstream.requests_for(TRANSLATION_PATH)) == 1)
        time.sleep(TEXT_DEADLINE / 2)  # the second joins half way through the first one's deadline
        second = pool.submit(translate, one_worker.url, "迟到的第一个")
        first, second = first.result(), second.result()
    assert first.status_code == 504
    assert second.status_code == 200, second.text  # it made the call itself, with the time it had left
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 2
