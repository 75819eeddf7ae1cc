"""Start the real Gradio apps of tests/gradio_apps/apps.py, each as a subprocess on a free loopback port."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import requests

from harness.gunicorn_server import free_port, wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/gradio_api/info", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def gradio_app(name: str, log_folder: Path):
    """Serve one app at `http://127.0.0.1:<port>` until the block ends; no share link, no analytics."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        # The files it answers with stay in the test's own folder (the tests read nothing beside the clone).
        "GRADIO_TEMP_DIR": str(log_folder / f"gradio-{name}-files"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    log_path = log_folder / f"gradio-{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.gradio_apps.apps", name, str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_until_ready(process, lambda: _answers(url), START_SECONDS, poll=0.2):
            raise RuntimeError(f"the Gradio app {name} did not start: {log_path.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
