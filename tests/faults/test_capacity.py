"""More requests in flight than upstream connections: callers wait for one within their
deadline, then get 504, never anything else. Under both worker classes."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.gunicorn_server import GunicornServer
from harness.upstream import Step
from tests.support.fault_service import (
    TEXT_DEADLINE,
    TRANSLATION_BODY,
    TRANSLATION_PATH,
    fault_env,
    write_models_config,
)

POOL_SIZE = 10  # per worker and upstream host: two workers hold 20 calls at once
UPSTREAM_DELAY = 1.5
CALLERS = 60  # three waves of 20: the third cannot start before 3.0 s and end by the 4 s deadline


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def small_pool_service(request, loopback, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"pool-{request.param}")
    env = fault_env(
        loopback,
        write_models_config(folder),
        WORKER_CLASS=request.param,
        UPSTREAM_POOL_SIZE=str(POOL_SIZE),
        GUNICORN_THREADS="64",
    )
    with GunicornServer(env=env, log_path=folder / "service.log") as server:
        yield server
    log = server.log_text()
    assert "Traceback" not in log and "internal_error" not in log


def post_translation(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = requests.post(url, data=TRANSLATION_BODY, timeout=30)
    return response.status_code, response.json(), time.monotonic() - started


def test_an_exhausted_pool_makes_callers_wait_then_504_never_500(small_pool_service, upstream):
    upstream.script(TRANSLATION_PATH, Step(delay=UPSTREAM_DELAY, repeat=CALLERS))
    url = f"{small_pool_service.url}/api/infer/text-translation"
    with ThreadPoolExecutor(CALLERS) as pool:
        answers = list(pool.map(post_translation, [url] * CALLERS))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 504}, statuses
    assert statuses.count(200) >= 2 * POOL_SIZE and statuses.count(504) >= 1, statuses
    for status, body, seconds in answers:
        assert seconds < TEXT_DEADLINE + 1
        if status == 504:
            assert body["error_type"] == "upstream_timeout"
