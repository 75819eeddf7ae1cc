"""Fixtures for fault tests: the real gunicorn process against a misbehaving loopback upstream."""

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from tests.support.fault_service import (
    TOKEN,
    WORKERS,
    booted_workers,
    fault_env,
    write_models_config,
)


class CapturedCalls:
    """Every response the tests received, to search them all for the token."""

    def __init__(self):
        self.responses = []

    def post(self, url: str, **kwargs) -> requests.Response:
        """POST and keep the response."""
        response = requests.post(url, timeout=30, **kwargs)
        self.responses.append(response)
        return response

    def leaks(self, secret: str) -> list:
        """Return the responses whose body or headers contain `secret`."""
        return [
            response
            for response in self.responses
            if secret.encode() in response.content
            or any(secret in name or secret in value for name, value in response.headers.items())
        ]


@pytest.fixture(scope="session")
def models_config(tmp_path_factory):
    return write_models_config(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def captured():
    return CapturedCalls()


@pytest.fixture(scope="session", params=["gevent", "gthread"])
def fault_service(request, loopback, models_config, captured, tmp_path_factory):
    """The service under each worker class in turn: every fault scenario runs under both."""
    log_path = tmp_path_factory.mktemp(f"gunicorn-faults-{request.param}") / "service.log"
    env = fault_env(loopback, models_config, WORKER_CLASS=request.param)
    with GunicornServer(env=env, log_path=log_path) as server:
        server.initial_workers = booted_workers(server, WORKERS)
        yield server
    # Over everything captured in every scenario, shutdown included.
    assert TOKEN not in server.log_text()
    assert not captured.leaks(TOKEN)
