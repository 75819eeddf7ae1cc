"""Workers killed (kill -9) with requests in flight, on both stores and both worker classes: the
day's quota and the ledger still agree, and the dead requests' slots are free at once."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.keys import bearer, write_key_file
from harness.redis_server import RedisServer
from harness.upstream import Step
from tests.support.fault_service import (
    TRANSLATION_BODY,
    TRANSLATION_PATH,
    booted_workers,
    fault_env,
    write_models_config,
)
from tests.support.waiting import wait_until

QUOTA, SLOTS, SERVED_BEFORE, CUT_OFF = 20, 4, 10, 4
KEYS = {
    "batch": {"secret": "secret-batch-crash", "concurrency": SLOTS, "results_per_day": QUOTA},
    "ops": {"secret": "secret-ops-crash", "admin": True},
}


def translate(url: str, timeout: float = 30) -> requests.Response:
    headers = {"Content-Type": "application/json", **bearer(KEYS["batch"]["secret"])}
    return requests.post(f"{url}/api/infer/text-translation", data=TRANSLATION_BODY, headers=headers, timeout=timeout)


def totals(url: str) -> dict:
    answer = requests.get(
        f"{url}/api/usage", params={"key": "batch"}, headers=bearer(KEYS["ops"]["secret"]), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]


def posted_upstream(upstream) -> int:
    return len(upstream.requests_for(TRANSLATION_PATH))


@pytest.fixture(scope="module")
def redis_for_crashes(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis-crash")) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request) -> dict:
    if request.param == "sqlite":
        return {"STORE": "sqlite"}
    server = request.getfixturevalue("redis_for_crashes")
    server.flush()
    return {"STORE": "redis", "REDIS_URL": server.url}


@pytest.fixture(params=["gevent", "gthread"])
def service(request, loopback, store_env, tmp_path):
    key_file = write_key_file(tmp_path / "keys.toml", KEYS)
    env = fault_env(
        loopback, write_models_config(tmp_path), API_KEYS_FILE=str(key_file), WORKER_CLASS=request.param, **store_env
    )
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
        booted_workers(server)
        yield server


def kill_every_worker(server) -> None:
    """kill -9 every worker, and wait for the master to have replaced them all."""
    killed = set(server.worker_pids())
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: len(set(server.worker_pids()) - killed) == len(killed)), server.log_tail()
    booted_workers(server)


def test_requests_cut_off_by_killed_workers_are_booked_and_free_their_slots(service, upstream):
    assert [translate(service.url).status_code for _ in range(SERVED_BEFORE)] == [200] * SERVED_BEFORE
    upstream.script(TRANSLATION_PATH, Step(never_respond=True, repeat=CUT_OFF))
    with ThreadPoolExecutor(CUT_OFF) as pool:
        hanging = [pool.submit(translate, service.url) for _ in range(CUT_OFF)]
        assert wait_until(lambda: posted_upstream(upstream) == SERVED_BEFORE + CUT_OFF), service.log_tail()
        kill_every_worker(service)
        for request in hanging:
            with pytest.raises(requests.ConnectionError):
                request.result()
    upstream.clear_scripts()

    # The dead requests' slots are free at once, not after their deadline and its margin.
    assert translate(service.url).status_code == 200
    booked = totals(service.url)
    assert booked["requests"] == SERVED_BEFORE + CUT_OFF + 1
    assert booked["errors"] == {"interrupted": CUT_OFF}
    # What the quota took and what the ledger says agree: the cut off results stay taken.
    assert booked["results"] == SERVED_BEFORE + CUT_OFF + 1

    left = QUOTA - booked["results"]
    assert [translate(service.url).status_code for _ in range(left)] == [200] * left
    refused = translate(service.url)
    assert refused.status_code == 429 and refused.json()["error_type"] == "quota_exceeded"
    assert f"has used {QUOTA} of its {QUOTA} results" in refused.json()["message"]
    final = totals(service.url)
    assert final["results"] == QUOTA
    assert final["errors"] == {"interrupted": CUT_OFF, "quota_exceeded": 1}
    assert "Traceback" not in service.log_text()
