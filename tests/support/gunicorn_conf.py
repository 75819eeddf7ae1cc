"""Load gunicorn.conf.py as gunicorn does, in a fresh interpreter (it may monkey-patch the
standard library with gevent, which the test process must never be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness.paths import REPO_ROOT

CONF = REPO_ROOT / "gunicorn.conf.py"
VALUES = (
    "bind",
    "worker_class",
    "workers",
    "worker_connections",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "accesslog",
    "loglevel",
    "forwarded_allow_ips",
)
_PROBE = f"""
import json, runpy, sys, warnings
warnings.simplefilter("error")  # gevent warns when it patches too late
conf = runpy.run_path({str(CONF)!r})
report = {{name: conf.get(name) for name in {VALUES!r}}}
if "gevent.monkey" in sys.modules:
    from gevent import monkey
    import threading
    from service.telemetry import metrics
    from service.hub import socket_watchdog as watchdog
    from service.hub import watchdog as hub_watchdog
    report["patched"] = {{name: monkey.is_module_patched(name) for name in ("threading", "socket", "ssl", "time", "select", "queue")}}
    report["gevent_objects"] = {{
        # A condition's re-entrant lock is threading's pure-Python one, built on the patched lock.
        "watchdog condition": type(getattr(watchdog.WATCHDOG._cond._lock, "_block", watchdog.WATCHDOG._cond._lock)).__module__,
        "metrics lock": type(metrics._lock).__module__,
        "attempt local": type(hub_watchdog._attempt).__module__,
        "threading.Lock": threading.Lock.__module__,
    }}
print(json.dumps(report))
"""


def load(env: dict | None = None) -> dict:
    """Return gunicorn's values from gunicorn.conf.py under `env` (None values unset a variable)."""
    environ = {name: value for name, value in os.environ.items() if name not in (env or {})}
    environ.update({name: value for name, value in (env or {}).items() if value is not None})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"gunicorn.conf.py failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
