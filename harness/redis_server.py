"""Run Debian's redis-server on a free loopback port, for the shared-store tests and the benchmark.

Nothing is persisted (`--save ""`, no append-only file): each server starts empty. It can be
stopped and started again on the same port, to test what the service does while it is away.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from harness.gunicorn_server import LOOPBACK_HOST, free_port, wait_until_ready

START_SECONDS = 10.0


class RedisStartError(RuntimeError):
    """redis-server is missing or never answered."""


def redis_binary() -> str:
    """Return redis-server; tests/run.sh installs Debian's package when it is missing."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise RedisStartError("redis-server is not installed: run the suite with `sh tests/run.sh`, which installs it")
    return found


class RedisServer:
    """One redis-server process on 127.0.0.1, in the foreground, logging to the work directory."""

    def __init__(self, work: Path, port: int | None = None):
        self.work = Path(work)
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK_HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING."""
        self.work.mkdir(parents=True, exist_ok=True)
        command = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", LOOPBACK_HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.work),
            "--logfile", str(self.work / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if not wait_until_ready(self._process, self.answers, START_SECONDS):
            self.stop()
            raise RedisStartError(f"redis-server did not start:\n{self.log_text()}")
        return self

    def answers(self) -> bool:
        """Tell whether the server answers PING now."""
        try:
            with socket.create_connection((LOOPBACK_HOST, self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it at once, as a crash would (nothing is persisted anyway)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def flush(self) -> None:
        """Empty every key, between tests that share the server."""
        with socket.create_connection((LOOPBACK_HOST, self.port), timeout=2) as connection:
            connection.sendall(b"FLUSHALL\r\n")
            if not connection.recv(16).startswith(b"+OK"):
                raise RedisStartError("FLUSHALL failed")

    def log_text(self) -> str:
        log = self.work / "redis.log"
        return log.read_text(errors="replace") if log.exists() else ""
