"""The request lifecycle (service/api/lifecycle.py): its hooks run in the order written down there,
and a request refused before its view still gets every step that follows."""

import functools
import logging

import pytest

from service.api import lifecycle
from tests.support.app import TEST_CATALOG, make_app, make_settings


def names(hooks) -> list[str]:
    return [hook.__name__ for hook in hooks]


def test_the_order_is_the_one_written_down():
    documented = [line.split()[1] for line in lifecycle.__doc__.splitlines() if line.strip()[:2].rstrip(".").isdigit()]
    assert documented == names(lifecycle.BEFORE + lifecycle.AFTER + lifecycle.TEARDOWN)


@pytest.fixture
def ran(monkeypatch, clock):
    """An app whose hooks note their name as they run, and the list they note into."""
    seen = []

    def noting(hook):
        @functools.wraps(hook)
        def wrapper(*args, **kwargs):
            seen.append(hook.__name__)
            return hook(*args, **kwargs)

        return wrapper

    for group in ("BEFORE", "AFTER", "TEARDOWN"):
        monkeypatch.setattr(lifecycle, group, tuple(noting(hook) for hook in getattr(lifecycle, group)))
    app = make_app(make_settings(api_keys=frozenset({"k-one-0123456789"})), TEST_CATALOG, clock)
    return app, seen


def test_hooks_run_in_the_written_order(ran):
    app, seen = ran
    response = app.test_client().get("/api/models", headers={"X-API-Key": "k-one-0123456789"})
    assert response.status_code == 200
    assert seen == names(lifecycle.BEFORE + lifecycle.AFTER + lifecycle.TEARDOWN)


def test_a_refused_caller_still_gets_the_steps_after_the_view(ran, caplog):
    app, seen = ran
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = app.test_client().get("/api/models", headers={"X-Request-ID": "refused-1"})
    assert response.status_code == 401 and response.headers["X-Request-ID"] == "refused-1"
    # identify_caller refused: count_in_flight never ran, so nothing is left in flight.
    assert seen == ["start_context", "answer_preflight", "identify_caller", *names(lifecycle.AFTER), "leave_in_flight"]
    assert any(
        "request_id=refused-1" in record.getMessage() and "status=401" in record.getMessage()
        for record in caplog.records
    )
