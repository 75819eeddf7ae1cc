"""Fixtures for property tests: the app on the Flask test client, every upstream call mocked.

The mocked upstream always answers well, so any 5xx is the service's own fault. The run is
bounded for CI (FUZZ_EXAMPLES examples per property, 200 by default, derandomized); set
FUZZ_EXAMPLES=20000 for a long, randomized run. The case count is reported at the end.
"""

import json
import re
import tomllib

import pytest
import responses

from service import create_app
from service.catalog import Catalog
from tests.support.app import TEST_CATALOG, make_settings
from tests.support.fuzzing import API_KEY, CASES, STATUSES, UPSTREAM_HOST

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def upstream_answer(request):
    """Answer any upstream call well, in the shape its route expects."""
    payload = json.loads(request.body or b"{}")
    n = payload.get("n", 1)
    if "/api/models/" in request.url:  # the Hub's model API: a model of the task it was asked for
        return 200, {"Content-Type": "application/json"}, json.dumps({"pipeline_tag": "translation"})
    if request.url.endswith("/chat/completions"):
        choices = [{"index": i, "message": {"role": "assistant", "content": "ok"}} for i in range(n)]
        return 200, {"Content-Type": "application/json"}, json.dumps({"choices": choices})
    if request.url.endswith("/completions"):
        choices = [{"index": i, "text": "ok"} for i in range(n)]
        return 200, {"Content-Type": "application/json"}, json.dumps({"choices": choices})
    if request.headers.get("Accept") == "image/png":
        return 200, {"Content-Type": "image/png"}, PNG
    return 200, {"Content-Type": "application/json"}, json.dumps([{"translation_text": "ok", "generated_text": "ok"}])


@pytest.fixture(scope="module")
def mocked_upstream():
    """Every request to the upstream host answered well, and recorded (this module's requests only)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.POST, responses.GET):
            mock.add_callback(method, re.compile(rf"https?://{re.escape(UPSTREAM_HOST)}/.*"), callback=upstream_answer)
        yield mock


def build_app(**overrides):
    """An app on the mocked upstream with the unit tests' catalog."""
    # The Hub's model API on the mocked host too, so that every call the service makes is seen.
    overrides.setdefault("hf_hub_api_base", f"https://{UPSTREAM_HOST}/api")
    app = create_app(make_settings(**overrides), Catalog(tomllib.loads(TEST_CATALOG)))
    app.config["TESTING"] = False  # errors go through the handlers, as in production
    return app


@pytest.fixture(scope="module")
def client(mocked_upstream):
    return build_app().test_client()


@pytest.fixture(scope="module")
def keyed_client(mocked_upstream):
    """An app that requires a client API key."""
    return build_app(api_keys=frozenset({API_KEY})).test_client()


def pytest_terminal_summary(terminalreporter):
    """Report how many hostile cases were run."""
    if CASES:
        detail = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(STATUSES.items()))
        terminalreporter.write_line(f"fuzz: {sum(CASES.values())} cases ({detail}); statuses {statuses}")
