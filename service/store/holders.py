"""Who holds a lease: the process that admitted the request, named so that any process on the
same machine (and in the same pid namespace) can tell whether it is still running.

A worker killed with its requests in flight (kill -9, the OOM killer, gunicorn's timeout)
never settles them; its leases would hold the key's slots until they expire. A lease names
its holder as `<machine>:<pid>:<start time>`: the machine is the kernel's boot id and the pid
namespace, the start time tells a process from a later one given the same pid. A holder on
another machine or namespace is never taken for dead: its lease waits for its expiry.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

UNKNOWN = ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return UNKNOWN


@cache
def machine() -> str:
    """This machine and pid namespace: pids mean the same process only within one."""
    boot = _read("/proc/sys/kernel/random/boot_id").strip()
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return UNKNOWN
    return f"{boot}/{namespace}" if boot else UNKNOWN


def start_time(pid: int) -> str:
    """When a process started (clock ticks since boot), '' when there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else UNKNOWN


def this_process() -> str:
    """The holder name of the calling process ('' where /proc cannot say); read once per process."""
    pid = os.getpid()
    known = _names.get(pid)
    if known is None:
        started = start_time(pid)
        known = _names[pid] = f"{machine()}:{pid}:{started}" if machine() and started else UNKNOWN
    return known


_names: dict[int, str] = {}


def is_gone(holder: str) -> bool:
    """Whether the holder is a process of this machine that no longer runs."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not machine() or parts[0] != machine() or not parts[1].isdigit():
        return False
    return start_time(int(parts[1])) != parts[2]
