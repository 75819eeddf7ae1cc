"""The real clients users have, run unchanged but for their base URL, against one live gunicorn
service in front of the session's loopback upstream.

huggingface_hub reads its environment when it is imported: telemetry off (it would otherwise ask
huggingface.co which agent harness runs it) and a home of its own, so that no saved token or
cached file of the machine's user is read. Both are set here, before any test module imports it.
"""

import os
import tempfile

import pytest

from harness.gunicorn_server import GunicornServer
from harness.service import TOKEN, service_env

os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))
os.environ.pop("HF_TOKEN", None)

# The key the clients present as their token.
CLIENT_KEY = "hub-client-key-0123456789abcdef"


@pytest.fixture(scope="module")
def gateway(loopback, tmp_path_factory):
    """The service with one client key, so that the clients' own token is what admits them."""
    log_path = tmp_path_factory.mktemp("gunicorn-clients") / "service.log"
    env = service_env(loopback, API_KEYS=CLIENT_KEY, WEB_CONCURRENCY="1")
    with GunicornServer(env=env, log_path=log_path) as server:
        yield server
    log = server.log_text()
    assert "WORKER TIMEOUT" not in log
    assert TOKEN not in log and CLIENT_KEY not in log
