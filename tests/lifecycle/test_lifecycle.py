"""Stop, reload and worker recycling of the real gunicorn process, with requests in flight."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.fault_service import (
    TOKEN,
    TRANSLATION_BODY,
    TRANSLATION_PATH,
    RequestStream,
    booted_workers,
    fault_env,
    write_models_config,
)
from tests.support.gunicorn_server import GunicornServer
from tests.support.upstream import LoopbackUpstream, Step

IN_FLIGHT = 8
UPSTREAM_DELAY = 1.5


@pytest.fixture
def upstream():
    with LoopbackUpstream(latency=0.02) as loopback:
        yield loopback


def start_service(upstream, tmp_path, **overrides) -> GunicornServer:
    """Start gunicorn against `upstream` and wait for all its workers."""
    env = fault_env(upstream, write_models_config(tmp_path), **overrides)
    server = GunicornServer(env=env, log_path=tmp_path / "service.log").start()
    server.initial_workers = booted_workers(server)
    return server


def assert_clean_log(server) -> None:
    """No worker killed for a timeout, and no token in anything logged."""
    log = server.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log


def wait_until(condition, timeout: float = 20.0) -> bool:
    """Poll `condition` until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_sigterm_lets_requests_in_flight_finish(upstream, tmp_path):
    server = start_service(upstream, tmp_path)
    upstream.script(TRANSLATION_PATH, Step(delay=UPSTREAM_DELAY, repeat=IN_FLIGHT))
    url = f"{server.url}/api/infer/text-translation"
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(requests.post, url, data=TRANSLATION_BODY, timeout=30) for _ in range(IN_FLIGHT)]
        assert wait_until(lambda: len(upstream.requests) == IN_FLIGHT), server.log_tail()
        exit_code = server.stop()  # SIGTERM while every request waits on the upstream
        responses = [future.result() for future in futures]
    assert [response.status_code for response in responses] == [200] * IN_FLIGHT
    assert all(response.json()["code"] == 0 for response in responses)
    assert exit_code == 0
    assert "Handling signal: term" in server.log_text()
    assert_clean_log(server)


def test_sighup_reload_drops_no_request(upstream, tmp_path):
    server = start_service(upstream, tmp_path)
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
    finally:
        assert server.stop() == 0


def test_recycled_workers_drop_no_request(upstream, tmp_path):
    server = start_service(upstream, tmp_path, MAX_REQUESTS="50")
    try:
        # Enough requests for each of the two workers to pass its 50 (+ up to 5 jitter) twice.
        with RequestStream(server.url, concurrency=4, limit=260) as stream:
            stream.wait_for(260)
        assert stream.failures == []
        assert stream.outcomes["ok"] >= 260
        assert not set(server.worker_pids()) & set(server.initial_workers)
        assert server.log_text().count("Autorestarting worker") >= 2
        assert_clean_log(server)
    finally:
        assert server.stop() == 0
