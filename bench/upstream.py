"""The loopback upstream as its own process, replaying the recordings with a fixed latency."""

from __future__ import annotations

import base64
import select
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

from harness import recordings
from harness.paths import REPO_ROOT
from harness.service import REPLAY_ALIASES
from harness.upstream import LOOPBACK_HOST

# A model name the service accepts in ?model_name=, answered with a real provider's PNG.
LARGE_IMAGE_MODEL = "bench/large-image"
LARGE_IMAGE_PATH = f"/hf-inference/models/{LARGE_IMAGE_MODEL}"
LARGE_IMAGE_URI_SUFFIX = "/out-0.png"  # the 1.5 MB PNG a provider served in providers.json
READY_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class LargeImage:
    """The recorded large image: where it was fetched from and how big it is."""

    recorded_path: str
    size: int


@lru_cache(maxsize=1)
def large_image() -> LargeImage:
    """Find the 1.5 MB PNG among the provider recordings."""
    for entry in recordings.providers():
        uri = entry["request"]["uri"]
        if uri.endswith(LARGE_IMAGE_URI_SUFFIX) and "body_base64" in entry["response"]:
            path = "/" + uri.split("://", 1)[1].split("/", 1)[1]
            return LargeImage(path, len(base64.b64decode(entry["response"]["body_base64"])))
    raise LookupError(f"no recorded image ending in {LARGE_IMAGE_URI_SUFFIX}")


class ReadyProcess:
    """A helper server as its own process, on a free loopback port it announces with `READY <port>`."""

    latency: float = 0.0

    def __init__(self):
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self):
        """Start the process."""
        return self.start()

    def __exit__(self, *exc_info) -> None:
        """Stop the process."""
        self.stop()

    @property
    def url(self) -> str:
        """Return the base URL the service is pointed at."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    def command(self) -> list[str]:
        """Return the command line."""
        raise NotImplementedError

    def start(self):
        """Start the process and wait for its `READY <port>` line."""
        self._process = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        ready, _, _ = select.select([self._process.stdout], [], [], READY_TIMEOUT_SECONDS)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"{self.command()[2]} did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """Ask the process to stop, killing it if it does not."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


class UpstreamProcess(ReadyProcess):
    """`python -m harness.upstream`, replaying the recordings after `latency` seconds."""

    def __init__(self, latency: float):
        super().__init__()
        self.latency = latency

    def command(self) -> list[str]:
        """Return the command line: the shipped models answered by recordings of the same task."""
        aliases = {**REPLAY_ALIASES, LARGE_IMAGE_PATH: large_image().recorded_path}
        command = [sys.executable, "-m", "harness.upstream", "--port", "0", "--latency", str(self.latency)]
        for path, recorded_path in aliases.items():
            command += ["--alias", f"{path}={recorded_path}"]
        return command


class BurstUpstreamProcess(ReadyProcess):
    """`python -m bench.burst_upstream`: one asyncio loop answering every call after `latency` (or never)."""

    def __init__(self, latency: float, hang: bool = False):
        super().__init__()
        self.latency, self.hang = latency, hang

    def command(self) -> list[str]:
        """Return the command line."""
        return [
            sys.executable,
            "-m",
            "bench.burst_upstream",
            "--port",
            "0",
            "--delay",
            str(self.latency),
            *(["--hang"] if self.hang else []),
        ]
