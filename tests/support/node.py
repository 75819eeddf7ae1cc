"""Node scripts of tests/clients/, run against a URL: the JavaScript clients as users run them.

tests/run.sh installs Debian's nodejs and the locked packages (`npm ci --prefix tests/clients`).
A script gets the URL as its first argument (then any others) and prints one JSON value on its
last line of output, which `run_node` returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from harness.paths import REPO_ROOT

CLIENTS = REPO_ROOT / "tests" / "clients"
INSTALLED = CLIENTS / "node_modules" / ".package-lock.json"
RUN_SUITE = "run the suite with `sh tests/run.sh`, which installs it"


class NodeMissing(RuntimeError):
    """node, or the locked packages of tests/clients/, are not installed."""


class NodeScriptFailed(AssertionError):
    """A script exited with an error or printed no JSON; the message holds what it wrote."""


def node_binary() -> str:
    found = shutil.which("node")
    if found is None:
        raise NodeMissing(f"node is not installed: {RUN_SUITE}")
    if not INSTALLED.exists():
        raise NodeMissing(
            f"the packages of tests/clients/ are not installed (npm ci --prefix tests/clients): {RUN_SUITE}"
        )
    return found


def run_node(script: str | Path, url: str, *args: str, timeout: float = 60, env: dict | None = None) -> Any:
    """Run `script` (a path under tests/clients/, where its imports resolve) with `url` and `args`;
    return the JSON value on its last line of output."""
    path = CLIENTS / script
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    finished = subprocess.run(
        [node_binary(), str(path), url, *args],
        cwd=CLIENTS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    said = f"{path.name} exited {finished.returncode}\nstdout:\n{finished.stdout}\nstderr:\n{finished.stderr}"
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        raise NodeScriptFailed(said)
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise NodeScriptFailed(said) from None
