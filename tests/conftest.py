"""Fixtures and guards shared by every test module.

Unit tests: `app` and `client` on a fake `clock`, the Hub mocked at the HTTP boundary
(`mock_hub`). Tests of real processes: `loopback`, the session's loopback upstream, and
`upstream`, the same with no scripts and an empty request log for each test.
"""

import logging

import pytest
import responses

from harness.redis_server import RedisServer
from harness.service import REPLAY_ALIASES
from harness.upstream import LoopbackUpstream
from service.telemetry.logs import configure_logging
from service.telemetry.redaction import Redactor
from tests.support.app import TEST_CATALOG, FakeClock, make_app, make_settings


@pytest.fixture(scope="session", autouse=True)
def store_outside_the_repository(tmp_path_factory):
    """An app built from the environment keeps its SQLite store in a temporary folder, never in
    the repository's data/ (which belongs to whoever runs `sh start.sh` there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield


@pytest.fixture
def clock():
    """A fake clock, handed to the app by `make_app`: its deadlines, waits and store times."""
    fake = FakeClock()
    return fake


@pytest.fixture
def settings():
    return make_settings()


@pytest.fixture
def app(settings, clock):
    return make_app(settings, TEST_CATALOG, clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def mock_hub():
    """The Hub mocked at the HTTP boundary; every request the service makes must be expected."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def captured_logs(caplog):
    """Capture every log record of the service at DEBUG and above."""
    service_logger = logging.getLogger("service")
    if not any(getattr(handler, "_gateway", False) for handler in service_logger.handlers):
        configure_logging(Redactor())  # install the service's handler now: an app built later keeps propagation
    caplog.set_level(logging.DEBUG)
    logging.getLogger("service").propagate = True
    yield caplog
    logging.getLogger("service").propagate = False


@pytest.fixture(scope="session")
def loopback():
    """The session's loopback upstream, answering the shipped models with recordings of their task."""
    with LoopbackUpstream() as upstream:
        for path, recorded in REPLAY_ALIASES.items():
            upstream.alias(path, recorded)
        yield upstream


@pytest.fixture
def upstream(loopback):
    """The loopback upstream with no scripts and an empty request log."""
    loopback.wait_idle()
    loopback.clear_scripts()
    loopback.reset_log()
    yield loopback
    # Stalled answers end when the service hangs up; give them a moment before the next test.
    loopback.wait_idle()
    loopback.clear_scripts()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port, shared by the session's tests (emptied by `store_backend`)."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_backend(request, tmp_path):
    """Settings overrides for each real store: SQLite in a fresh directory, or the session's Redis, emptied."""
    if request.param == "sqlite":
        return {"store": "sqlite", "data_dir": tmp_path / "data"}
    server = request.getfixturevalue("redis_server")
    server.flush()
    return {"store": "redis", "redis_url": server.url}
