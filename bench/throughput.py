"""Load runs with wrk: requests per second and latency percentiles under concurrency."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.latency import BenchError
from bench.workload import Call

WRK_SCRIPT = Path(__file__).with_name("post.lua")
WRK_THREADS = 2
WRK_TIMEOUT = "10s"


@dataclass(frozen=True)
class LoadRun:
    """What one wrk run measured."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_second(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds


def ensure_wrk() -> str:
    """Return wrk's path, installing Debian's package when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        subprocess.run("apt-get update -qq && apt-get install -y -qq wrk >/dev/null", shell=True, check=True)
        path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed and could not be installed (apt-get install wrk)")
    return path


def run_wrk(port: int, call: Call, connections: int, seconds: float) -> LoadRun:
    """Keep `connections` keep-alive connections busy with `call` for `seconds`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(call.body)
        body_file.flush()
        command = [
            ensure_wrk(),
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={WRK_TIMEOUT}",
            "-s",
            str(WRK_SCRIPT),
            f"http://127.0.0.1:{port}{call.path}",
            "--",
            body_file.name,
            *(f"{name}: {value}" for name, value in call.headers.items() if name.lower() != "content-type"),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    summary = next((line[6:] for line in completed.stdout.splitlines() if line.startswith("BENCH ")), None)
    if completed.returncode != 0 or summary is None:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    figures = json.loads(summary)
    errors = sum(figures[name] for name in figures if name.endswith("_errors"))
    if errors:
        raise BenchError(f"wrk saw {errors} failed requests on {call.path}: {figures}")
    return LoadRun(
        figures["requests"], errors, figures["duration_us"] / 1e6, figures["p50_us"] / 1000, figures["p99_us"] / 1000
    )
