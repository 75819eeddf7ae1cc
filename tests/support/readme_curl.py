"""The README's curl commands and the success bodies they document, run against a real service
(directly, or through nginx)."""

import json
import re
import subprocess
from pathlib import Path

from tests.support.documents import README, curl_lines

# (README command index, task, model the shipped configuration picks first, results)
README_EXAMPLES = [
    (0, "text-translation", "google/madlad400-3b-mt", 3),
    (1, "text-completion", "meta-llama/Llama-3.1-8B-Instruct", 3),
    (2, "text-to-text", "meta-llama/Llama-3.1-8B-Instruct", 3),
    (3, "text-to-image", "stabilityai/stable-diffusion-3-medium-diffusers", 1),
]


def readme_curl_commands() -> list:
    """Return the curl lines of the README's 'Calling it' section."""
    return curl_lines(README, "Calling it")


def run_curl(command: str, port: int, cwd: Path) -> dict:
    """Run one README command against the test port; return the JSON it wrote."""
    command = command.replace("127.0.0.1:8098", f"127.0.0.1:{port}")
    output = re.search(r"-o (\S+)", command).group(1)
    subprocess.run(["sh", "-c", command + " --silent --show-error --max-time 20"], cwd=cwd, check=True, timeout=30)
    return json.loads((cwd / output).read_text(encoding="utf-8"))


def assert_documented_success(body: dict, task: str, model: str, count: int) -> None:
    """Check a success body against the documented shape."""
    assert set(body) == {"code", "message", "task_type", "model", "request_id", "result"}
    assert (body["code"], body["message"], body["task_type"], body["model"]) == (0, "ok", task, model)
    assert len(body["result"]) == count
    if task != "text-to-image":
        assert all(isinstance(text, str) and text for text in body["result"])
