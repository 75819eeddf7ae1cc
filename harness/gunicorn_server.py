"""Run the real service under gunicorn as a subprocess, for integration tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import requests

from harness.paths import REPO_ROOT

LOOPBACK_HOST = "127.0.0.1"
HEALTH_PATH = "/healthz"
POLL_SECONDS = 0.1
LOG_TAIL_CHARS = 4000


class GunicornStartError(RuntimeError):
    """The service exited or never answered its health check."""


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        return probe.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], seconds: float, poll: float = 0.02) -> bool:
    """Poll `ready` until it says yes (True), the process exits or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def child_pids(pid: int) -> list[int]:
    """Return the pids of a process's direct children."""
    children_files = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if children_files:
        return sorted({int(child) for path in children_files for child in _read_proc(path).split()})
    # Kernels built without CONFIG_PROC_CHILDREN have no children files: scan every process.
    return sorted(child for child, parent in _parent_pids() if parent == pid)


def _parent_pids() -> list[tuple[int, int]]:
    """List (pid, parent pid) for every process visible in /proc."""
    pairs = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = _read_proc(stat_path).rpartition(")")[2].split()
        if len(fields) > 1:
            pairs.append((int(stat_path.parent.name), int(fields[1])))
    return pairs


def vm_rss_kb(pid: int) -> int | None:
    """Return a process's resident set size in kB, None once it has gone."""
    for line in _read_proc(Path(f"/proc/{pid}/status")).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def _read_proc(path: Path) -> str:
    """Read a /proc file, as empty text when its process has exited meanwhile."""
    try:
        return path.read_text()
    except OSError:
        return ""


class GunicornServer:
    """The service under gunicorn on a free loopback port, logging to a file."""

    def __init__(
        self,
        env: Mapping[str, str | None] | None = None,
        log_path: str | Path | None = None,
        repo_root: str | Path = REPO_ROOT,
        app: str = "service:create_app()",
        config: str | Path | None = None,
    ):
        self.repo_root = Path(repo_root)
        self.app = app
        self.config = Path(config) if config else self.repo_root / "gunicorn.conf.py"
        self.port = free_port()
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="tmp-gunicorn-")) / "gunicorn.log"
        self._env_overrides = dict(env or {})
        self._process: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None

    def __enter__(self) -> GunicornServer:
        """Start the service and wait for it to be healthy."""
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        """Stop the service."""
        self.stop()

    @property
    def url(self) -> str:
        """Return the service's base URL."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """Return the gunicorn master's pid."""
        if self._process is None:
            raise RuntimeError("gunicorn has not been started")
        return self._process.pid

    @property
    def command(self) -> list[str]:
        """Return the command line that starts gunicorn."""
        return [sys.executable, "-m", "gunicorn", "-c", str(self.config), self.app]

    def environment(self) -> dict[str, str]:
        """Return the subprocess environment: ours, the overrides (None removes), then the bind address."""
        environment = dict(os.environ)
        environment.setdefault("PYTHONUNBUFFERED", "1")  # so log_text() shows prints as they happen
        # Each service keeps its SQLite store beside its log, never in the repository's data/.
        environment["DATA_DIR"] = str(self.log_path.parent / "data")
        for name, value in self._env_overrides.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        environment.update(PORT=str(self.port), HOST=LOOPBACK_HOST)
        return environment

    def start(self, timeout: float = 20.0) -> GunicornServer:
        """Start gunicorn and wait until GET /healthz answers 200."""
        if self._process is not None:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            self.command,
            cwd=self.repo_root,
            env=self.environment(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a hung master and its workers can be killed together
        )
        try:
            self._wait_until_healthy(timeout)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        """Poll the health check until it answers 200, the process exits or the time is up."""
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            while not self._answers_health_check(session):
                exit_code = self._process.poll()
                if exit_code is not None:
                    raise GunicornStartError(
                        f"gunicorn exited with {exit_code} before answering {HEALTH_PATH}:\n{self.log_tail()}"
                    )
                if time.monotonic() >= deadline:
                    raise GunicornStartError(
                        f"gunicorn did not answer {HEALTH_PATH} within {timeout}s:\n{self.log_tail()}"
                    )
                time.sleep(POLL_SECONDS)

    def _answers_health_check(self, session: requests.Session) -> bool:
        """Tell whether GET /healthz answers 200 right now."""
        try:
            return session.get(self.url + HEALTH_PATH, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 30.0) -> int | None:
        """Send SIGTERM, wait for a graceful exit (SIGKILL after timeout) and return the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_process_group()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return process.returncode

    def _kill_process_group(self) -> None:
        """SIGKILL the master and its workers."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def signal(self, signal_number: int) -> None:
        """Send a signal to the gunicorn master (HUP reloads, TTIN/TTOU add or remove a worker)."""
        os.kill(self.pid, signal_number)

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's current workers."""
        return child_pids(self.pid)

    def worker_rss_kb(self) -> dict[int, int]:
        """Return each worker's resident set size in kB."""
        sizes = {pid: vm_rss_kb(pid) for pid in self.worker_pids()}
        return {pid: size for pid, size in sizes.items() if size is not None}

    def log_text(self) -> str:
        """Return everything gunicorn and the service have logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """Return the end of the log, for error messages."""
        return self.log_text()[-chars:]
