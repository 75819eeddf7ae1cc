"""Resident memory of the service's workers, read from /proc."""

from __future__ import annotations

from pathlib import Path

from harness.gunicorn_server import GunicornServer


def status_kb(pid: int, field: str) -> int | None:
    """Return one kB field of /proc/<pid>/status (VmRSS, VmHWM), None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def worker_memory_kb(server: GunicornServer, field: str) -> dict[int, int]:
    """Return `field` for each of the service's workers."""
    sizes = {pid: status_kb(pid, field) for pid in server.worker_pids()}
    return {pid: size for pid, size in sizes.items() if size is not None}


def reset_peak(server: GunicornServer) -> bool:
    """Reset the workers' VmHWM to their current RSS (Linux >= 4.0); False where not allowed."""
    try:
        for pid in server.worker_pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False
