"""Fixtures for integration tests: the real gunicorn process against a loopback upstream."""

import pytest

from tests.support.gunicorn_server import GunicornServer
from tests.support.upstream import LoopbackUpstream

TOKEN = "hf_integration-not-a-real-token-0123456789"

# The shipped configuration's first choices, answered with recorded exchanges of the same task.
REPLAY_ALIASES = {
    "/hf-inference/models/google/madlad400-3b-mt": "/hf-inference/models/t5-base",
    "/hf-inference/models/Helsinki-NLP/opus-mt-zh-en": "/hf-inference/models/t5-base",
    "/hf-inference/models/stabilityai/stable-diffusion-3-medium-diffusers": "/hf-inference/models/CompVis/stable-diffusion-v1-4",
}


def service_env(upstream: LoopbackUpstream, **overrides) -> dict:
    """Environment for a gunicorn process that talks only to the loopback upstream."""
    env = {
        "HF_API_TOKEN": TOKEN,
        "HF_API_BASE": f"{upstream.url}/hf-inference/models",
        "HF_ROUTER_BASE": f"{upstream.url}/v1",
        "TEXT_DEADLINE_SECONDS": "4",
        "IMAGE_DEADLINE_SECONDS": "6",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "API_KEYS": None,
        "API_KEYS_FILE": None,
        "MODELS_CONFIG": None,
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def upstream():
    with LoopbackUpstream() as loopback:
        for path, recorded in REPLAY_ALIASES.items():
            loopback.alias(path, recorded)
        yield loopback


@pytest.fixture(scope="session")
def service(upstream, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "service.log"
    with GunicornServer(env=service_env(upstream), log_path=log_path) as server:
        yield server
    log = server.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log


@pytest.fixture
def fresh_upstream(upstream):
    """The shared upstream with no scripts and an empty request log."""
    upstream.wait_idle()
    upstream.clear_scripts()
    upstream.reset_log()
    yield upstream
    upstream.wait_idle()
    upstream.clear_scripts()
