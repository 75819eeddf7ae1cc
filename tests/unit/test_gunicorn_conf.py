"""gunicorn never kills a worker that is still inside a request's deadline."""

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load_conf(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


@pytest.mark.parametrize("text, image", [("30", "90"), ("120", "10"), ("5", "300")])
def test_worker_timeout_is_above_the_longest_deadline(monkeypatch, text, image):
    conf = load_conf(monkeypatch, TEXT_DEADLINE_SECONDS=text, IMAGE_DEADLINE_SECONDS=image)
    longest = max(float(text), float(image))
    # The slowest request: its deadline, plus the fan-out grace second, plus reading the answer.
    assert conf["timeout"] >= longest + 10
    assert conf["graceful_timeout"] >= longest + 10


def test_defaults_bind_8098_with_threads(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("HOST", raising=False)
    conf = load_conf(monkeypatch)
    assert conf["bind"] == "0.0.0.0:8098"
    assert conf["worker_class"] == "gthread"
    assert conf["threads"] >= 8
    assert conf["max_requests_jitter"] > 0
