"""The store as the real service opens it under gunicorn: a DATA_DIR that can never work stops
the start with a message, and the files it keeps are its user's alone, whatever the umask."""

import os
import shutil
import signal
import stat

import pytest
import requests

from harness.gunicorn_server import GunicornServer, GunicornStartError
from tests.support.fault_service import TRANSLATION_BODY, booted_workers, fault_env, write_models_config
from tests.support.waiting import wait_until


def test_a_data_directory_that_is_a_file_stops_the_service_with_a_message(loopback, tmp_path):
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be")
    env = fault_env(loopback, write_models_config(tmp_path), STORE="sqlite", DATA_DIR=str(blocked))
    server = GunicornServer(env=env, log_path=tmp_path / "service.log")
    with pytest.raises(GunicornStartError, match="exited"):
        server.start(timeout=30)
    log = server.log_text()
    assert f"hf-gateway cannot start: SettingsError: DATA_DIR={blocked}" in log
    assert "STORE=off" in log and "Traceback" not in log


def test_store_off_starts_whatever_the_data_directory(loopback, tmp_path):
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be")
    env = fault_env(loopback, write_models_config(tmp_path), STORE="off", DATA_DIR=str(blocked))
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
        assert requests.post(f"{server.url}/api/infer/text-translation", data=TRANSLATION_BODY, timeout=30).ok


def test_the_store_of_the_running_service_is_private_under_a_permissive_umask(loopback, tmp_path):
    data = tmp_path / "data"
    env = fault_env(loopback, write_models_config(tmp_path), STORE="sqlite", DATA_DIR=str(data))
    previous = os.umask(0)  # inherited by gunicorn, its workers and SQLite
    try:
        with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
            answer = requests.post(f"{server.url}/api/infer/text-translation", data=TRANSLATION_BODY, timeout=30)
            assert answer.status_code == 200
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.iterdir()}
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes == {"gateway.sqlite3": 0o600, "gateway.sqlite3-wal": 0o600, "gateway.sqlite3-shm": 0o600}


def test_a_store_that_breaks_after_the_start_never_stops_a_worker_from_booting(loopback, tmp_path):
    data = tmp_path / "data"
    env = fault_env(loopback, write_models_config(tmp_path), STORE="sqlite", DATA_DIR=str(data))
    with GunicornServer(env=env, log_path=tmp_path / "service.log") as server:
        workers = booted_workers(server)
        # The data directory becomes a file: the store can never work again.
        shutil.rmtree(data)
        data.write_text("a file where the data directory was")
        os.kill(workers[0], signal.SIGKILL)
        assert wait_until(lambda: workers[0] not in server.worker_pids() and len(server.worker_pids()) == 2)
        assert wait_until(lambda: server.log_text().count("Booting worker") >= 3), server.log_tail()
        for _ in range(6):  # both workers, the new one included, serve and fail open
            answer = requests.post(f"{server.url}/api/infer/text-translation", data=TRANSLATION_BODY, timeout=30)
            assert answer.status_code == 200, answer.text
        assert server._process.poll() is None
    assert "Worker failed to boot" not in server.log_text()
