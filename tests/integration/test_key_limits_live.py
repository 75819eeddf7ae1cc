"""Per-key limits and the ledger across real processes: two gunicorn instances behind the real
nginx sharing one real redis-server, and one instance of two workers on the embedded SQLite store.
The limits must be exact across all of them, and a Redis that goes away must not cost a request."""

from __future__ import annotations

import csv
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.keys import bearer, write_key_file
from harness.nginx_server import NginxServer
from harness.redis_server import RedisServer
from harness.upstream import Step
from service import cli
from tests.support.fault_service import TRANSLATION_BODY, TRANSLATION_PATH, fault_env, write_models_config

KEYS = {
    "batch": {"secret": "secret-batch-live", "rpm": 30},
    "slots": {"secret": "secret-slots-live", "concurrency": 4},
    "ops": {"secret": "secret-ops-live", "admin": True},
}
TRANSLATE = "/api/infer/text-translation"
JSON = {"Content-Type": "application/json"}


def translate(url: str, key: str, timeout: float = 20) -> requests.Response:
    return requests.post(
        url + TRANSLATE, data=TRANSLATION_BODY, headers={**JSON, **bearer(KEYS[key]["secret"])}, timeout=timeout
    )


def usage_of(url: str, key: str) -> dict:
    answer = requests.get(f"{url}/api/usage", params={"key": key}, headers=bearer(KEYS["ops"]["secret"]), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]


def served_by(server: GunicornServer) -> int:
    """How many inference requests one instance logged."""
    return server.log_text().count("path=/api/infer/text-translation")


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    return write_key_file(tmp_path_factory.mktemp("keys") / "keys.toml", KEYS)


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis-live")) as server:
        yield server


@pytest.fixture(scope="module")
def two_hosts(loopback, key_file, shared_redis, tmp_path_factory):
    """Two instances on one Redis, behind nginx with both in its upstream block."""
    models = write_models_config(tmp_path_factory.mktemp("models"))
    env = fault_env(loopback, models, API_KEYS_FILE=str(key_file), STORE="redis", REDIS_URL=shared_redis.url)
    with ExitStack() as stack:
        hosts = [stack.enter_context(GunicornServer(env=env)) for _ in range(2)]
        proxy = stack.enter_context(NginxServer([host.port for host in hosts], tmp_path_factory.mktemp("nginx")))
        yield proxy, hosts


@pytest.fixture(scope="module")
def one_host(loopback, key_file, tmp_path_factory):
    """One instance of two workers on the embedded SQLite store."""
    models = write_models_config(tmp_path_factory.mktemp("models-sqlite"))
    with GunicornServer(env=fault_env(loopback, models, API_KEYS_FILE=str(key_file), STORE="sqlite")) as host:
        yield host


def check_requests_per_minute(url: str) -> None:
    started = time.time()
    responses = [translate(url, "batch") for _ in range(40)]
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 30 + [429] * 10
    for refused in responses[30:]:
        assert refused.json()["error_type"] == "rate_limited"
        window_left = 60 - (time.time() - started)
        assert window_left - 2 <= int(refused.headers["Retry-After"]) <= 61
        assert refused.headers["RateLimit-Policy"] == '"rpm";q=30;w=60'
    totals = usage_of(url, "batch")
    assert (totals["requests"], totals["results"], totals["errors"]) == (40, 30, {"rate_limited": 10})
    assert totals["upstream_attempts"] == 30  # refused requests never reached the upstream


def check_concurrency(url: str, upstream) -> None:
    upstream.script(TRANSLATION_PATH, Step(replay=True, delay=2.0, repeat=20))
    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(response.status_code for response in pool.map(lambda _: translate(url, "slots"), range(20)))
    assert statuses == [200] * 4 + [429] * 16
    assert len(upstream.requests_for(TRANSLATION_PATH)) == 4
    assert upstream.max_in_flight <= 4
    assert translate(url, "slots").status_code == 200  # every slot was given back


def test_a_rate_limit_is_exact_across_two_hosts_behind_nginx(two_hosts, upstream):
    proxy, hosts = two_hosts
    check_requests_per_minute(proxy.url)
    assert all(served_by(host) >= 10 for host in hosts)  # nginx spread the requests over both


def test_a_concurrency_limit_holds_across_two_hosts(two_hosts, upstream):
    proxy, _ = two_hosts
    check_concurrency(proxy.url, upstream)


def test_a_rate_limit_is_exact_across_the_workers_of_one_host(one_host, upstream):
    check_requests_per_minute(one_host.url)


def test_a_concurrency_limit_holds_across_the_workers_of_one_host(one_host, upstream):
    check_concurrency(one_host.url, upstream)


def test_redis_going_away_costs_no_request_and_limits_return_with_it(two_hosts, shared_redis, upstream):
    proxy, hosts = two_hosts
    shared_redis.stop()
    try:
        statuses = [translate(proxy.url, "batch").status_code for _ in range(12)]
        assert statuses == [200] * 12  # batch is over its rpm, but nothing can count it: served
        ready = [requests.get(f"{host.url}/readyz", timeout=10).json() for host in hosts]
        assert all(answer["status"] == "degraded" for answer in ready), ready
        assert all("redis: unavailable" in answer["checks"]["store"] for answer in ready)
    finally:
        shared_redis.start()
    time.sleep(1.2)  # a failed store is asked again a second after its last failure
    statuses = [translate(proxy.url, "batch").status_code for _ in range(35)]
    assert statuses.count(200) == 30 and statuses[-1] == 429  # the restarted Redis counts from zero
    assert all(requests.get(f"{host.url}/readyz", timeout=10).json()["status"] == "ready" for host in hosts)
    for host in hosts:
        assert "Traceback" not in host.log_text()
        assert host.log_text().count("store unavailable") <= 2  # once a minute per worker, not per request


def test_hf_infer_usage_reads_the_ledger_as_a_table_csv_or_json(one_host, upstream, capsys):
    for _ in range(3):
        assert translate(one_host.url, "ops").status_code == 200
    common = ["usage", "--url", one_host.url, "--api-key", KEYS["ops"]["secret"], "--key", "ops"]
    assert cli.main([*common, "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["totals"]["requests"] == 3 and answer["rows"][0]["key"] == "ops"
    assert cli.main([*common, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:4] == ["date", "key", "model", "requests"] and rows[1][1:4] == ["ops", "t5-base", "3"]
    assert cli.main(common) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["date", "key", "model", "requests"] and table[-2].split()[:2] == ["total", "3"]


def test_hf_infer_usage_says_why_it_was_refused(one_host, capsys):
    assert cli.main(["usage", "--url", one_host.url, "--api-key", KEYS["batch"]["secret"]]) == 1
    assert "403" in capsys.readouterr().err
    assert cli.main(["usage", "--url", "http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert "cannot reach" in capsys.readouterr().err
