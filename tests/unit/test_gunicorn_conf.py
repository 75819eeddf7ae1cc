"""gunicorn.conf.py: every value from the settings, gevent patched first, workers never killed
inside a request's deadline."""

import pytest

from tests.support import gunicorn_conf


@pytest.mark.parametrize("text, image", [("30", "90"), ("120", "10"), ("5", "300")])
def test_worker_timeout_is_above_the_longest_deadline(text, image):
    conf = gunicorn_conf.load({"TEXT_DEADLINE_SECONDS": text, "IMAGE_DEADLINE_SECONDS": image})
    longest = max(float(text), float(image))
    # The slowest request: its deadline, plus the fan-out grace second, plus reading the answer.
    assert conf["timeout"] >= longest + 10
    assert conf["graceful_timeout"] >= longest + 10


def test_defaults_serve_8098_with_gevent():
    conf = gunicorn_conf.load({"PORT": None, "HOST": None, "WORKER_CLASS": None})
    assert conf["bind"] == "0.0.0.0:8098"
    assert conf["worker_class"] == "service.serving.workers.GeventWorker"
    assert conf["worker_connections"] >= 1000
    assert conf["max_requests_jitter"] > 0


def test_gevent_patches_before_the_service_makes_a_lock_a_thread_local_or_a_socket():
    conf = gunicorn_conf.load({"WORKER_CLASS": "gevent"})
    assert all(conf["patched"].values()), conf["patched"]
    assert all(module.startswith("gevent") for module in conf["gevent_objects"].values()), conf["gevent_objects"]


def test_gthread_stays_selectable_and_unpatched():
    conf = gunicorn_conf.load({"WORKER_CLASS": "gthread", "GUNICORN_THREADS": "32"})
    assert conf["worker_class"] == "service.serving.workers.ThreadWorker"
    assert conf["threads"] == 32
    assert "patched" not in conf


@pytest.mark.parametrize(
    "env, named",
    [
        ({"WORKER_CLASS": "eventlet"}, "WORKER_CLASS"),
        ({"TEXT_DEADLINE_SECONDS": "soon"}, "TEXT_DEADLINE_SECONDS"),
        ({"UPSTREAM_POOL_SIZE": "4", "FANOUT_CONCURRENCY": "10"}, "UPSTREAM_POOL_SIZE"),
        ({"PORT": "70000"}, "PORT"),
    ],
)
def test_bad_settings_stop_the_configuration_with_one_line_naming_them(env, named):
    with pytest.raises(RuntimeError, match=named):
        gunicorn_conf.load(env)
