"""Fixtures for fault tests: the real gunicorn process against a misbehaving loopback upstream."""

import time

import pytest
import requests

from tests.integration.conftest import service_env
from tests.support.gunicorn_server import GunicornServer
from tests.support.upstream import LoopbackUpstream

# Recognisable, so that any leak into a log line, body or header is found by a plain search.
TOKEN = "hf_faultSuiteSecretToken9876543210zyxw"
TEXT_DEADLINE = 4.0
IMAGE_DEADLINE = 4.0
MAX_IMAGE_BYTES = 1024 * 1024
WORKERS = 2
TRANSLATION_PATH = "/hf-inference/models/t5-base"
IMAGE_PATH = "/hf-inference/models/CompVis/stable-diffusion-v1-4"

# One target per task (all of them recorded), so a fault costs exactly one model's attempts.
SINGLE_TARGET_MODELS = """
[languages]
zh = "Simplified Chinese"
en = "English"

[tasks.text-translation]
default_pair = "zh2en"
[tasks.text-translation.pairs]
zh2en = ["t5-base"]

[tasks.text-completion]
targets = ["openai-community/gpt2"]

[tasks.text-to-text]
targets = ["google/flan-t5-xxl"]

[tasks.text-to-image]
targets = ["CompVis/stable-diffusion-v1-4"]
"""


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
            response for response in self.responses
            if secret.encode() in response.content
            or any(secret in name or secret in value for name, value in response.headers.items())
        ]


def fault_env(upstream: LoopbackUpstream, models_config, **overrides) -> dict:
    """Environment with short deadlines, a small image limit and single-target chains."""
    return service_env(
        upstream,
        HF_API_TOKEN=TOKEN,
        TEXT_DEADLINE_SECONDS=str(TEXT_DEADLINE),
        IMAGE_DEADLINE_SECONDS=str(IMAGE_DEADLINE),
        MAX_IMAGE_BYTES=str(MAX_IMAGE_BYTES),
        MODELS_CONFIG=str(models_config),
        WEB_CONCURRENCY=str(WORKERS),
        **overrides,
    )


def booted_workers(server, count: int, timeout: float = 20.0) -> list:
    """Wait until the master has `count` workers (the health check answers after the first)."""
    deadline = time.monotonic() + timeout
    while len(pids := server.worker_pids()) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} workers, found {pids}:\n{server.log_tail()}")
        time.sleep(0.05)
    return pids


@pytest.fixture(scope="session")
def models_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "models.toml"
    path.write_text(SINGLE_TARGET_MODELS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def captured():
    return CapturedCalls()


@pytest.fixture(scope="module")
def fault_upstream():
    with LoopbackUpstream() as loopback:
        yield loopback


@pytest.fixture(scope="module")
def fault_service(fault_upstream, models_config, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-faults") / "service.log"
    with GunicornServer(env=fault_env(fault_upstream, models_config), log_path=log_path) as server:
        server.initial_workers = booted_workers(server, WORKERS)
        yield server


@pytest.fixture
def upstream(fault_upstream):
    """The module's upstream with no scripts and an empty request log."""
    fault_upstream.wait_idle()
    fault_upstream.clear_scripts()
    fault_upstream.reset_log()
    yield fault_upstream
    # Stalled answers end when the service hangs up; give them a moment before the next test.
    fault_upstream.wait_idle()
    fault_upstream.clear_scripts()
