"""The demo (`DEMO=1 sh start.sh`) as a process of its own on a free port, for the tests of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from harness.gunicorn_server import free_port
from harness.paths import REPO_ROOT

START_SECONDS = 120


def demo_env(**overrides) -> dict:
    """This environment without a token, a host or DEMO_PUBLIC, with DEMO=1 and this virtualenv."""
    env = {name: value for name, value in os.environ.items() if name not in ("HF_API_TOKEN", "HOST", "DEMO_PUBLIC")}
    return {**env, "DEMO": "1", "VENV": sys.prefix, **overrides}


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


@contextlib.contextmanager
def running_demo(command: list[str], log: Path) -> Iterator[str]:
    """Start `command` (start.sh or `python -m service.demo`) on a free port, yield its URL once it
    answers, then stop it with TERM and check it exits 0."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=demo_env(PORT=str(port)),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(url + "/healthz"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
