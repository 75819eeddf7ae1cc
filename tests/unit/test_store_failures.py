"""A store that fails never fails a request: served without limits, logged once a minute, shown by
/readyz and a metric, and used again as soon as it answers; ledger rows wait in memory meanwhile."""

import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.gunicorn_server import free_port
from harness.keys import bearer, write_key_file
from harness.paths import REPO_ROOT
from harness.redis_server import RedisServer
from service.settings import SettingsError
from service.store import guard as guard_module
from service.store import open_store
from service.store.contract import Settlement
from service.telemetry import metrics
from tests.support.app import API, TEST_CATALOG, make_app, make_settings, post
from tests.support.assertions import assert_error_shape

OPUS = f"{API}/Helsinki-NLP/opus-mt-zh-en"
SECRET = "secret-limited"
KEY_FILE = f"""
[keys.limited]
sha256 = "{hashlib.sha256(SECRET.encode()).hexdigest()}"
rpm = 2
concurrency = 5
results_per_day = 100
admin = true
"""
HEADERS = {"Authorization": f"Bearer {SECRET}"}


def app_with(tmp_path, clock, **store):
    key_file = tmp_path / "keys.toml"
    key_file.write_text(KEY_FILE, encoding="utf-8")
    return make_app(make_settings(api_keys_file=key_file, store_timeout=0.2, **store), TEST_CATALOG, clock)


def translate(client):
    return post(client, "text-translation", {"inputs": "连衣裙"}, headers=HEADERS)


def store_errors() -> float:
    return sum(
        sample.value
        for sample in metrics.families().store_errors.collect()[0].samples
        if sample.name.endswith("_total")
    )


def unavailable_logs(captured_logs) -> list:
    return [record for record in captured_logs.records if "store unavailable" in record.getMessage()]


@pytest.fixture
def answering_hub(mock_hub):
    mock_hub.post(OPUS, json=[{"translation_text": "Dress"}])
    return mock_hub


def test_redis_away_serves_every_request_logs_once_and_says_degraded(tmp_path, clock, answering_hub, captured_logs):
    port = free_port()
    client = app_with(tmp_path, clock, store="redis", redis_url=f"redis://127.0.0.1:{port}/0").test_client()
    errors_before = store_errors()
    statuses = [translate(client).status_code for _ in range(6)]
    assert statuses == [200] * 6  # rpm 2 could not be counted: served, never refused, never a 500
    assert len(unavailable_logs(captured_logs)) == 1
    assert store_errors() > errors_before
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "degraded"
    assert ready["checks"]["store"].startswith("redis: unavailable for ")
    assert "ConnectionError" in ready["checks"]["store"] and "ledger rows kept in memory" in ready["checks"]["store"]
    assert client.get("/api/usage", headers=HEADERS).status_code == 503


def test_redis_coming_back_is_used_again_without_a_restart_and_gets_the_kept_rows(
    tmp_path, clock, answering_hub, captured_logs, monkeypatch
):
    monkeypatch.setattr(guard_module, "RETRY_SECONDS", 0.0)
    port = free_port()
    client = app_with(tmp_path, clock, store="redis", redis_url=f"redis://127.0.0.1:{port}/0").test_client()
    assert [translate(client).status_code for _ in range(3)] == [200] * 3
    with RedisServer(tmp_path / "redis", port=port):
        assert [translate(client).status_code for _ in range(3)] == [200, 200, 429]  # rpm 2 applies again
        assert client.get("/readyz").get_json() == {
            "status": "ready",
            "checks": {"configuration": "loaded", "token": "set", "store": "redis: ok"},
        }
        [row] = client.get("/api/usage", headers=HEADERS).get_json()["rows"]
        assert (row["requests"], row["results"], row["errors"]) == (6, 5, {"rate_limited": 1})
    assert any("store available again" in record.getMessage() for record in captured_logs.records)


def test_a_data_directory_that_is_a_file_stops_the_start_naming_the_way_out(tmp_path, clock):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    with pytest.raises(SettingsError) as refused:
        app_with(tmp_path, clock, store="sqlite", data_dir=blocked)
    message = str(refused.value)
    assert f"DATA_DIR={blocked}" in message and "STORE=off" in message and "File exists" in message


def open_in_read_only_mount(source: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """Open the store with DATA_DIR under a read-only bind mount of `source`, in a mount
    namespace of its own (root), or under a folder without write permission (anyone else)."""
    program = (
        "import sys; from pathlib import Path\n"
        "from service.store import open_store; from tests.support.app import make_settings\n"
        "try:\n"
        f"    open_store(make_settings(store='sqlite', data_dir=Path({str(data_dir)!r})))\n"
        "except Exception as exc:\n"
        "    sys.exit(f'{type(exc).__name__}: {exc}')\n"
    )
    python = [sys.executable, "-c", program]
    if os.geteuid() != 0:
        source.chmod(0o500)
        return subprocess.run(python, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("no unshare(1) to make a read-only mount")
    mount = source.parent / "mounted"
    mount.mkdir()
    command = " ".join(shlex.quote(part) for part in python).replace(str(source), str(mount))
    script = f"mount --bind {source} {mount} && mount -o remount,bind,ro {mount} && exec {command}"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("existing_database", [False, True])
def test_a_data_directory_on_a_read_only_mount_stops_the_start(tmp_path, existing_database):
    source = tmp_path / "volume"
    source.mkdir()
    if existing_database:  # made by an earlier start, since mounted read-only
        open_store(make_settings(store="sqlite", data_dir=source / "data")).store.close()
    opened = open_in_read_only_mount(source, source / "data")
    assert opened.returncode == 1, opened
    assert opened.stderr.startswith("SettingsError: DATA_DIR=") and "STORE=off" in opened.stderr, opened.stderr


def test_store_off_serves_whatever_the_data_directory(tmp_path, clock, answering_hub):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the data directory should be")
    client = make_app(make_settings(store="off", data_dir=blocked), TEST_CATALOG, clock).test_client()
    assert post(client, "text-translation", {"inputs": "连衣裙"}).status_code == 200


def test_store_off_refuses_a_key_file_with_limits_at_start(tmp_path, clock):
    with pytest.raises(SettingsError, match="STORE=off, but the key file sets limits"):
        app_with(tmp_path, clock, store="off")


@pytest.fixture
def store_off(tmp_path, clock):
    key_file = write_key_file(tmp_path / "keys.toml", {"reader": {"secret": "secret-reader", "admin": True}})
    settings = make_settings(api_keys_file=key_file, store="off", breaker_failures=1)
    return make_app(settings, TEST_CATALOG, clock).test_client()


def test_store_off_has_no_ledger_to_read_and_is_ready(store_off):
    answer = store_off.get("/api/usage", headers=bearer("secret-reader"))
    assert_error_shape(answer, 503, "store_unavailable")
    assert answer.get_json()["message"] == "STORE=off: no ledger is kept"
    ready = store_off.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["checks"]["store"] == "off"


def read_as_reader(client):
    return post(client, "text-translation", {"inputs": "连衣裙"}, headers=bearer("secret-reader"))


def test_store_off_keeps_no_answer_and_counts_no_store_error(store_off, answering_hub):
    errors_before = store_errors()
    assert [read_as_reader(store_off).headers["X-Cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert len(answering_hub.calls) == 2 and store_errors() == errors_before


def test_store_off_opens_no_breaker(store_off, mock_hub):
    mock_hub.post(OPUS, status=503, json={"error": "overloaded"})
    calls = []
    for _ in range(2):  # one failure would open the breaker of a kept store
        assert read_as_reader(store_off).status_code == 503
        calls.append(len(mock_hub.calls))
    assert calls[1] > calls[0] > 0  # the second request went upstream too
    gateway = store_off.application.extensions["gateway"]
    target = gateway.catalog.target("Helsinki-NLP/opus-mt-zh-en")
    assert gateway.breakers.describe(target) == {"state": "closed", "failures": 0}


def test_a_data_directory_that_fails_after_the_start_fails_open(tmp_path, clock, answering_hub, captured_logs):
    data = tmp_path / "data"
    client = app_with(tmp_path, clock, store="sqlite", data_dir=data).test_client()
    shutil.rmtree(data)
    data.write_text("the folder was replaced by a file while serving")
    assert [translate(client).status_code for _ in range(4)] == [200] * 4
    assert len(unavailable_logs(captured_logs)) == 1
    assert client.get("/readyz").get_json()["status"] == "degraded"


def test_a_locked_database_costs_at_most_the_store_timeout(tmp_path, clock, answering_hub, captured_logs):
    data = tmp_path / "data"
    client = app_with(tmp_path, clock, store="sqlite", data_dir=data).test_client()
    assert translate(client).status_code == 200
    holder = sqlite3.connect(data / "gateway.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert translate(client).status_code == 200
        assert time.monotonic() - started < 2.0
        assert "database is locked" in unavailable_logs(captured_logs)[0].getMessage()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_ledger_rows_kept_in_memory_are_bounded(monkeypatch, tmp_path, clock, answering_hub):
    monkeypatch.setattr(guard_module, "MAX_PENDING_ROWS", 2)
    client = app_with(tmp_path, clock, store="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    guard = client.application.extensions["gateway"].store
    for model in ("a", "b", "c", "d"):
        guard.settle(
            Settlement(
                "limited",
                None,
                [],
                "2025-12-01",
                [guard_module.UsageEntry("2025-12-01", "limited", model, {"requests": 1})],
            )
        )
    assert guard.status().pending_rows == 2
