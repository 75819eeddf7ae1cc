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

from harness.gunicorn_server import LOOPBACK_HOST, free_port, wait_until_ready
from harness.paths import REPO_ROOT

SITE_CONF = REPO_ROOT / "deploy" / "nginx.conf"
# The sample's own addresses, names and paths, replaced by the test's.
SAMPLE_UPSTREAM = "server 127.0.0.1:8098;"
SAMPLE_LOG_DIR = "/var/log/nginx/"
SAMPLE_NAME = "server_name gateway.example.com;"
SAMPLE_CERTIFICATE = "/etc/letsencrypt/live/gateway.example.com/fullchain.pem"
SAMPLE_CERTIFICATE_KEY = "/etc/letsencrypt/live/gateway.example.com/privkey.pem"
SAMPLE_HTTP_DEFAULT = "listen 80 default_server;"
SAMPLE_HTTP = "listen 80;"
SAMPLE_TLS_DEFAULT = "listen 443 ssl default_server;"
SAMPLE_TLS = "listen 443 ssl;"
# The names the test's requests ask for: the site's own, not unknown hosts. A client sends
# no TLS server name for an address, only for a name: HTTPS goes to localhost.
SITE_NAME = "localhost"
SITE_NAMES = f"{SITE_NAME} {LOOPBACK_HOST}"
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


def self_signed_certificate(work: Path) -> tuple[Path, Path]:
    """A certificate for the site's names and its key, made with openssl."""
    certificate, key = work / "site.crt", work / "site.key"
    if not certificate.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={SITE_NAME}"]
            + ["-addext", f"subjectAltName=DNS:{SITE_NAME},IP:{LOOPBACK_HOST}"]
            + ["-keyout", str(key), "-out", str(certificate)],
            check=True,
            capture_output=True,
        )
    return certificate, key


def render_site(
    site_text: str,
    listen_port: int,
    upstream_ports: list[int],
    work: Path,
    http_port: int | None = None,
    tls: bool = False,
) -> str:
    """Point the sample site at the test's ports (one server line per instance), name, certificate
    and log directory, refusing a sample that drifted. The site answers on `listen_port`, over
    TLS when `tls` (else plain HTTP, so that the proxying itself is tested without it); the
    redirect and the refusal of unknown names on `http_port`."""
    servers = "\n    ".join(f"server {LOOPBACK_HOST}:{port};" for port in upstream_ports)
    certificate, key = self_signed_certificate(work)
    site_listen = f"listen {LOOPBACK_HOST}:{listen_port}{' ssl' if tls else ''}"
    http_listen = f"listen {LOOPBACK_HOST}:{http_port or free_port()}"
    replacements = {
        SAMPLE_UPSTREAM: servers,
        SAMPLE_LOG_DIR: f"{work}/",
        SAMPLE_CERTIFICATE: str(certificate),
        SAMPLE_CERTIFICATE_KEY: str(key),
        SAMPLE_HTTP_DEFAULT: f"{http_listen} default_server;",
        SAMPLE_HTTP: f"{http_listen};",
        SAMPLE_TLS_DEFAULT: f"{site_listen} default_server;",
        SAMPLE_TLS: f"{site_listen};",
    }
    for sample, replacement in replacements.items():
        if site_text.count(sample) != 1:
            raise NginxStartError(f"{SITE_CONF} should contain {sample!r} exactly once")
        site_text = site_text.replace(sample, replacement)
    if site_text.count(SAMPLE_NAME) != 2:
        raise NginxStartError(f"{SITE_CONF} should contain {SAMPLE_NAME!r} twice (the redirect and the site)")
    return site_text.replace(SAMPLE_NAME, f"server_name {SITE_NAMES};")


class NginxServer:
    """nginx in the foreground on a free loopback port, balancing over one or several gunicorn ports."""

    def __init__(self, upstream_port: int | list[int], work: Path, site_conf: Path = SITE_CONF, tls: bool = False):
        self.upstream_ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
        self.work = Path(work)
        self.site_conf = site_conf
        self.tls = tls
        self.port = free_port()
        self.http_port = free_port()
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> NginxServer:
        """Start nginx and wait until it listens."""
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        """Stop nginx."""
        self.stop()

    @property
    def url(self) -> str:
        """Return the site's base URL (https://localhost when it was started with TLS)."""
        return f"https://{SITE_NAME}:{self.port}" if self.tls else f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def http_url(self) -> str:
        """Return the base URL of the plain-HTTP port, the one that redirects and refuses."""
        return f"http://{LOOPBACK_HOST}:{self.http_port}"

    @property
    def certificate(self) -> Path:
        """Return the site's self-signed certificate, for a client to verify it with."""
        return self.work / "site.crt"

    @property
    def access_log(self) -> Path:
        """Return the site's access log."""
        return self.work / "hf-gateway.access.log"

    def write_config(self) -> Path:
        """Write the main configuration and the rendered site into the work directory."""
        self.work.mkdir(parents=True, exist_ok=True)
        site = render_site(
            self.site_conf.read_text(), self.port, self.upstream_ports, self.work, self.http_port, self.tls
        )
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
