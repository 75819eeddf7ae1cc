"""`sh start.sh` serves the API on the port it is given."""

import os
import signal
import subprocess
import sys
import time

import requests

from harness.gunicorn_server import free_port
from harness.paths import REPO_ROOT


def test_start_sh_serves_and_stops_cleanly(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", VENV=sys.prefix, WEB_CONCURRENCY="1", HF_API_TOKEN="")
    with open(tmp_path / "start.log", "w") as log:
        process = subprocess.Popen(
            ["sh", "start.sh"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "start.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("start.sh never answered /healthz")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    text = (tmp_path / "start.log").read_text()
    assert text.count("HF_API_TOKEN is not set") == 1  # warned once, by the master
