"""The curl examples of docs/operations.md's 'OpenAPI and docs' and 'Logs and readiness' sections, run live."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.documents import OPERATIONS, curl_lines

SECTIONS = ("OpenAPI and docs", "Logs and readiness")


def section_curl_commands(title: str) -> list:
    """Return the curl lines of one section of docs/operations.md."""
    return curl_lines(OPERATIONS, title)


def run(command: str, port: int, cwd: Path) -> str:
    """Run one documented command against the test port; return what it printed."""
    command = command.replace("127.0.0.1:8098", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["sh", "-c", command + " --show-error --max-time 20"],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


@pytest.mark.parametrize("title", SECTIONS)
def test_each_section_has_examples(title):
    assert section_curl_commands(title)


def test_openapi_example_writes_the_document(service, tmp_path):
    (command,) = section_curl_commands("OpenAPI and docs")
    run(command, service.port, tmp_path)
    document = json.loads((tmp_path / "openapi.json").read_text())
    assert document["openapi"].startswith("3.0") and "/api/infer/text-to-image" in document["paths"]


def test_request_id_example_reaches_the_upstream(service, upstream, tmp_path):
    command = next(line for line in section_curl_commands("Logs and readiness") if "X-Request-ID" in line)
    sent_id = re.search(r"X-Request-ID: ([^\"']+)", command).group(1)
    headers = run(command, service.port, tmp_path)
    assert re.search(r"^HTTP/1\.1 200", headers) and f"X-Request-ID: {sent_id}" in headers
    assert upstream.requests and all(entry.headers["X-Request-ID"] == sent_id for entry in upstream.requests)


def test_readyz_example(service, upstream, tmp_path):
    command = next(line for line in section_curl_commands("Logs and readiness") if "/readyz" in line)
    assert json.loads(run(command, service.port, tmp_path)) == {
        "status": "ready",
        "checks": {"configuration": "loaded", "token": "set", "store": "sqlite: ok"},
    }
    assert not upstream.requests
