"""`python -m service.demo` (what `DEMO=1 sh start.sh` runs): the recorded upstream, then
gunicorn with the service pointed at it, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from service.demo.upstream import RecordedUpstream
from service.settings import PROJECT_ROOT, environ_with_dotenv

EXIT_REFUSED = 2
DEMO_HOST = "127.0.0.1"
DEMO_PORT = "8098"
DEMO_APP = "service.demo.recorded_app:create_demo_app()"
MODELS = Path(__file__).with_name("models.toml")
# Stands in for a token, which the service needs before it calls anything: it only ever
# reaches the recorded upstream on this host.
DEMO_TOKEN = "hf_demo-recorded-answers-only"


class DemoRefused(Exception):
    """The demo would not be what it says: the message says why and what to do."""


def demo_address(environ: dict) -> tuple[str, str]:
    """HOST and PORT for the demo: loopback unless DEMO_PUBLIC=1 confirms another address, and
    never beside a real token (a demo must not be mistaken for the service)."""
    if environ.get("HF_API_TOKEN"):
        raise DemoRefused(
            "DEMO=1 answers with recordings only, yet HF_API_TOKEN is set (in the environment or .env): "
            "start without DEMO=1 to call the real models, or unset HF_API_TOKEN for the demo"
        )
    host = environ.get("HOST") or DEMO_HOST
    if not is_loopback(host) and environ.get("DEMO_PUBLIC") != "1":
        raise DemoRefused(
            f"the demo serves on 127.0.0.1 only, and HOST is {host}: set DEMO_PUBLIC=1 to let every host that can "
            "reach this one see the demo, or unset HOST"
        )
    return host, environ.get("PORT") or DEMO_PORT


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_environment(environ: dict, upstream_url: str, host: str, port: str, data_dir: str) -> dict:
    """The service's environment in demo mode: every upstream on the recorded one, the demo's
    catalog, open to every caller, a store of its own; what .env says of these does not apply."""
    return {
        **environ,
        "HF_API_TOKEN": DEMO_TOKEN,
        "HF_API_BASE": f"{upstream_url}/hf-inference/models",
        "HF_ROUTER_BASE": f"{upstream_url}/v1",
        "HF_HUB_API_BASE": f"{upstream_url}/api",
        "MODELS_CONFIG": str(MODELS),
        "API_KEYS": "",
        "API_KEYS_FILE": "",
        "STORE": "sqlite",
        "REDIS_URL": "",
        "DATA_DIR": data_dir,
        "PIDFILE": "",
        "HOST": host,
        "PORT": port,
        "WEB_CONCURRENCY": environ.get("WEB_CONCURRENCY") or "1",
    }


def gunicorn_command() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]
    return [*start, "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), DEMO_APP]


def main() -> int:
    environ, _ = environ_with_dotenv(os.environ)
    try:
        host, port = demo_address(environ)
    except DemoRefused as exc:
        print(f"hf-gateway demo: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    with RecordedUpstream() as upstream, tempfile.TemporaryDirectory(prefix="hf-gateway-demo-") as data_dir:
        print(
            f"hf-gateway demo: recorded answers only, no model is called: http://{host}:{port}/ (Ctrl-C stops)",
            file=sys.stderr,
        )
        env = demo_environment(environ, upstream.url, host, port, data_dir)
        service = subprocess.Popen(gunicorn_command(), cwd=PROJECT_ROOT, env=env)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda received, frame: service.send_signal(signal.SIGTERM))
        return service.wait()


if __name__ == "__main__":
    sys.exit(main())
