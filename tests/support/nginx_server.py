"""Run the real nginx, with the shipped site configuration, in front of a test gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.gunicorn_server import LOOPBACK_HOST, free_port, wait_until_ready
from tests.support.paths import REPO_ROOT

SITE_CONF = REPO_ROOT / "deploy" / "nginx.conf"
# The sample's own addresses and paths, replaced by the test's.
SAMPLE_UPSTREAM = "server 127.0.0.1:8098;"
SAMPLE_LISTEN = "listen 80;"
SAMPLE_LOG_DIR = "/var/log/nginx/"
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
START_SECONDS = 10.0
STOP_SECONDS = 10.0

MAIN_CONF = """{user}daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/site.conf;
}}
"""


class NginxStartError(RuntimeError):
    """nginx is missing, rejected its configuration or never listened."""


def nginx_binary() -> str:
    """Return the nginx executable; tests/run.sh installs Debian's package when it is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    found = shutil.which("nginx", path=search)
    if not found:
        raise NginxStartError("nginx is not installed: run the suite with `sh tests/run.sh`, which installs it")
    return found


def render_site(site_text: str, listen_port: int, upstream_ports: list[int], work: Path) -> str:
    """Point the sample site at the test's ports (one server line per instance) and log directory,
    refusing a sample that drifted."""
    servers = "\n    ".join(f"server {LOOPBACK_HOST}:{port};" for port in upstream_ports)
    replacements = {
        SAMPLE_UPSTREAM: servers,
        SAMPLE_LISTEN: f"listen {LOOPBACK_HOST}:{listen_port};",
        SAMPLE_LOG_DIR: f"{work}/",
    }
    for sample, replacement in replacements.items():
        if site_text.count(sample) != 1:
            raise NginxStartError(f"{SITE_CONF} should contain {sample!r} exactly once")
        site_text = site_text.replace(sample, replacement)
    return site_text


class NginxServer:
    """nginx in the foreground on a free loopback port, balancing over one or several gunicorn ports."""

    def __init__(self, upstream_port: int | list[int], work: Path, site_conf: Path = SITE_CONF):
        self.upstream_ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
        self.work = Path(work)
        self.site_conf = site_conf
        self.port = free_port()
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> NginxServer:
        """Start nginx and wait until it listens."""
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        """Stop nginx."""
        self.stop()

    @property
    def url(self) -> str:
        """Return nginx's base URL."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def access_log(self) -> Path:
        """Return the site's access log."""
        return self.work / "hf-gateway.access.log"

    def write_config(self) -> Path:
        """Write the main configuration and the rendered site into the work directory."""
        self.work.mkdir(parents=True, exist_ok=True)
        site = render_site(self.site_conf.read_text(), self.port, self.upstream_ports, self.work)
        (self.work / "site.conf").write_text(site)
        # As root, nginx's workers would switch to an account that cannot enter the test's directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = self.work / "nginx.conf"
        main.write_text(MAIN_CONF.format(user=user, work=self.work))
        return main

    def start(self) -> NginxServer:
        """Start nginx as a foreground child and wait until its port accepts connections."""
        main = self.write_config()
        command = [nginx_binary(), "-p", str(self.work), "-c", str(main), "-e", str(self.work / "error.log")]
        with open(self.work / "nginx.out", "ab") as output:
            self._process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until_ready(self._process, self._accepts, START_SECONDS, poll=0.05):
            self.stop()
            raise NginxStartError(f"nginx did not start:\n{self.log_text()}")
        return self

    def _accepts(self) -> bool:
        """Tell whether the port accepts a connection now."""
        try:
            with socket.create_connection((LOOPBACK_HOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop gracefully (QUIT), then kill what is left."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_text(self) -> str:
        """Return nginx's output and error log."""
        parts = [self.work / "nginx.out", self.work / "error.log"]
        return "\n".join(path.read_text(errors="replace") for path in parts if path.exists())

    def access_log_text(self) -> str:
        """Return the site's access log so far."""
        return self.access_log.read_text() if self.access_log.exists() else ""

    def access_logged(self, text: str, timeout: float = 5.0) -> bool:
        """Tell whether `text` reaches the access log; nginx writes it just after answering."""
        deadline = time.monotonic() + timeout
        while text not in self.access_log_text():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True
