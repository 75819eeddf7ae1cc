"""Fixtures for integration tests: the real gunicorn process against a loopback upstream."""

import pytest

from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env


@pytest.fixture(scope="session")
def service(loopback, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "service.log"
    with GunicornServer(env=service_env(loopback), log_path=log_path) as server:
        yield server
    log = server.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log
