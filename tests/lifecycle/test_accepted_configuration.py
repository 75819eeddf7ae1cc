"""A broken file on disk never stops the service: every worker boots from the configuration the
master last accepted, and the broken file is reported (log, /readyz, metric) until it is mended.

Real gunicorn, both worker classes: a refused reload then a worker killed with SIGKILL, and a typo
with no reload at all followed by the routine MAX_REQUESTS recycle."""

import os
import signal

import requests

from harness.keys import bearer, write_key_file
from tests.support.fault_service import (
    TRANSLATION_BODY,
    RequestStream,
    booted_workers,
    start_fault_service,
)
from tests.support.waiting import wait_until

SECRET = "gw-accepted-configuration-secret-0001"
BROKEN_METRIC = "hf_gateway_configuration_broken"


def translate(server, headers=None) -> requests.Response:
    return requests.post(f"{server.url}/api/infer/text-translation", data=TRANSLATION_BODY, headers=headers, timeout=10)


def kill_one_worker_and_wait_for_its_replacement(server) -> None:
    victim = server.initial_workers[0]
    os.kill(victim, signal.SIGKILL)
    replaced = wait_until(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2)
    assert replaced, server.log_tail()
    assert wait_until(lambda: server.log_text().count("Booting worker") >= 3), server.log_tail()


def broken_gauge(server) -> float:
    """The configuration-broken gauge as /metrics shows it (the highest of the live workers)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(BROKEN_METRIC)]
    assert values, f"{BROKEN_METRIC} is not exposed"
    return max(values)


def assert_still_serving(server, headers=None) -> None:
    assert server._process.poll() is None, server.log_tail()  # the master is alive
    for _ in range(6):  # enough to reach both workers
        response = translate(server, headers)
        assert response.status_code == 200, response.text


def test_a_worker_killed_after_a_refused_reload_boots_from_the_accepted_keys(loopback, tmp_path, worker_class):
    key_file = write_key_file(tmp_path / "keys.toml", {"ops": {"secret": SECRET}})
    server = start_fault_service(loopback, tmp_path, worker_class, API_KEYS_FILE=str(key_file))
    try:
        with key_file.open("a", encoding="utf-8") as file:
            file.write("\n[keys.bad\n")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in server.log_text()), server.log_tail()
        kill_one_worker_and_wait_for_its_replacement(server)

        assert_still_serving(server, bearer(SECRET))
        assert translate(server).status_code == 401  # the accepted keys still close the service
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert "keys.toml" in ready.json()["checks"]["configuration"]
        assert broken_gauge(server) == 1
        assert "keys.toml" in server.log_text().split("reload refused", 1)[1]

        write_key_file(key_file, {"ops": {"secret": SECRET}})  # mended
        assert wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).json()["status"] == "ready")
        assert requests.get(f"{server.url}/readyz", timeout=10).json()["checks"]["configuration"] == "loaded"
        assert wait_until(lambda: broken_gauge(server) == 0)
    finally:
        assert server.stop() == 0


def test_a_typo_in_the_models_then_a_recycle_never_stops_the_service(loopback, tmp_path, worker_class):
    server = start_fault_service(loopback, tmp_path, worker_class, MAX_REQUESTS="20")
    try:
        with (tmp_path / "models.toml").open("a", encoding="utf-8") as file:
            file.write("\n[tasks.text-to-image\ngarbage = = =\n")
        # Enough requests for both workers to be recycled (20 + up to 2 jitter) at least once.
        with RequestStream(server.url, concurrency=2, limit=120) as stream:
            stream.wait_for(120)
        assert stream.failures == []
        assert server.log_text().count("Autorestarting worker") >= 1
        assert_still_serving(server)
        assert "models.toml" in requests.get(f"{server.url}/readyz", timeout=10).json()["checks"]["configuration"]
        assert broken_gauge(server) == 1
        assert "cannot be loaded" in server.log_text()
    finally:
        assert server.stop() == 0


def test_a_reload_after_the_file_is_mended_serves_the_new_configuration(loopback, tmp_path, worker_class):
    key_file = write_key_file(tmp_path / "keys.toml", {"ops": {"secret": SECRET}})
    server = start_fault_service(loopback, tmp_path, worker_class, API_KEYS_FILE=str(key_file))
    try:
        other = "gw-accepted-configuration-secret-0002"
        with key_file.open("a", encoding="utf-8") as file:
            file.write("\n[keys.bad\n")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in server.log_text()), server.log_tail()
        write_key_file(key_file, {"ops": {"secret": SECRET}, "new": {"secret": other}})
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: not set(server.worker_pids()) & set(server.initial_workers)), server.log_tail()
        booted_workers(server)
        assert_still_serving(server, bearer(other))
        kill_one_worker = server.worker_pids()[0]
        os.kill(kill_one_worker, signal.SIGKILL)
        assert wait_until(lambda: kill_one_worker not in server.worker_pids() and len(server.worker_pids()) == 2)
        assert_still_serving(server, bearer(other))  # the replacement boots from the newer accepted keys
    finally:
        assert server.stop() == 0
