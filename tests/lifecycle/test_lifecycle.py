"""Stop, reload and worker recycling of the real gunicorn process, with requests in flight."""

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer, GunicornStartError
from harness.upstream import Step
from tests.support.fault_service import (
    TOKEN,
    TRANSLATION_BODY,
    TRANSLATION_PATH,
    RequestStream,
    booted_workers,
    fault_env,
    start_fault_service,
    write_models_config,
)
from tests.support.waiting import wait_until

IN_FLIGHT = 8
UPSTREAM_DELAY = 1.5


def assert_clean_log(server) -> None:
    """No worker killed for a timeout, and no token in anything logged."""
    log = server.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log


def ledger_requests(server) -> int:
    """The requests the usage ledger holds (the service runs open: every caller is key `-`)."""
    answer = requests.get(f"{server.url}/api/usage", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]["requests"]


def test_sigterm_lets_requests_in_flight_finish(loopback, tmp_path, worker_class):
    server = start_fault_service(loopback, tmp_path, worker_class)
    loopback.script(TRANSLATION_PATH, Step(delay=UPSTREAM_DELAY, repeat=IN_FLIGHT))
    url = f"{server.url}/api/infer/text-translation"
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(requests.post, url, data=TRANSLATION_BODY, timeout=30) for _ in range(IN_FLIGHT)]
        assert wait_until(lambda: len(loopback.requests) == IN_FLIGHT), server.log_tail()
        exit_code = server.stop()  # SIGTERM while every request waits on the upstream
        responses = [future.result() for future in futures]
    assert [response.status_code for response in responses] == [200] * IN_FLIGHT
    assert all(response.json()["code"] == 0 for response in responses)
    assert exit_code == 0
    assert "Handling signal: term" in server.log_text()
    assert_clean_log(server)
    restarted = start_fault_service(loopback, tmp_path, worker_class)  # the same data directory
    try:
        assert ledger_requests(restarted) == IN_FLIGHT  # every request that ended was counted
    finally:
        restarted.stop()


def test_sighup_reload_drops_no_request(loopback, tmp_path, worker_class):
    server = start_fault_service(loopback, tmp_path, worker_class)
    try:
        with RequestStream(server.url, concurrency=4) as stream:
            stream.wait_for(40)
            server.signal(signal.SIGHUP)
            replaced = wait_until(lambda: not set(server.worker_pids()) & set(server.initial_workers))
            after_reload = stream.total
            stream.wait_for(after_reload + 40)
        assert replaced, server.log_tail()
        assert stream.failures == []
        assert stream.outcomes["ok"] >= after_reload + 40
        assert len(booted_workers(server)) == 2
        assert_clean_log(server)
        assert ledger_requests(server) == stream.total
    finally:
        assert server.stop() == 0


def test_recycled_workers_drop_no_request(loopback, tmp_path, worker_class):
    server = start_fault_service(loopback, tmp_path, worker_class, MAX_REQUESTS="50")
    try:
        # Enough requests for each of the two workers to pass its 50 (+ up to 5 jitter) twice.
        with RequestStream(server.url, concurrency=4, limit=260) as stream:
            stream.wait_for(260)
        assert stream.failures == []
        assert stream.outcomes["ok"] >= 260
        # Kept-alive clients are not spread evenly over gevent workers: count recycles, not pids.
        assert set(server.worker_pids()) != set(server.initial_workers)
        assert server.log_text().count("Autorestarting worker") >= 2
        assert_clean_log(server)
        assert ledger_requests(server) == stream.total
    finally:
        assert server.stop() == 0


def test_a_reload_with_a_broken_configuration_keeps_the_running_workers(loopback, tmp_path, worker_class):
    server = start_fault_service(loopback, tmp_path, worker_class)
    config = tmp_path / "models.toml"
    try:
        with config.open("a", encoding="utf-8") as file:
            file.write("\n[tasks.text-to-image\ngarbage = = =\n")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in server.log_text()), server.log_tail()
        assert "CatalogError" in server.log_text() and "models.toml" in server.log_text()
        assert sorted(server.worker_pids()) == sorted(server.initial_workers)
        response = requests.post(f"{server.url}/api/infer/text-translation", data=TRANSLATION_BODY, timeout=10)
        assert response.status_code == 200, response.text
        write_models_config(tmp_path)  # mended: the next reload goes through
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: not set(server.worker_pids()) & set(server.initial_workers)), server.log_tail()
        assert_clean_log(server)
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"MODELS_CONFIG": "broken"}, "models.toml"),
        ({"API_KEYS_FILE": "/nonexistent/api-keys"}, "/nonexistent/api-keys"),
        ({"TEXT_DEADLINE_SECONDS": "-3"}, "TEXT_DEADLINE_SECONDS"),
        ({"API_KEYS_FILE": "keys.toml"}, "keys.toml, line 3: keys.ops: rpm must be"),
        ({"STORE": "redis"}, "STORE=redis needs REDIS_URL"),
    ],
)
def test_a_broken_configuration_stops_the_start_with_one_line(loopback, tmp_path, overrides, named):
    config = write_models_config(tmp_path)
    if overrides.get("MODELS_CONFIG") == "broken":
        with config.open("a", encoding="utf-8") as file:
            file.write("\n[[[ not toml\n")
        overrides = {}
    if overrides.get("API_KEYS_FILE") == "keys.toml":
        key_file = tmp_path / "keys.toml"
        key_file.write_text(f'[keys.ops]\nsha256 = "{"0" * 64}"\nrpm = -1\n', encoding="utf-8")
        overrides = {"API_KEYS_FILE": str(key_file)}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = fault_env(loopback, config, TMPDIR=str(scratch), **overrides)
    server = GunicornServer(env=env, log_path=tmp_path / "service.log")
    with pytest.raises(GunicornStartError):
        server.start(timeout=20)
    log = server.log_text()
    assert server.stop() not in (0, None)
    refusals = [line for line in log.splitlines() if "cannot start" in line]
    assert len(refusals) == 1 and named in refusals[0], log
    assert "Traceback" not in log and "gateway ready" not in log and "Booting worker" not in log
    assert not list(scratch.iterdir())  # no metrics directory left behind
