"""A tiny static web server on a loopback port of its own: a page's origin, apart from the gateway's."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOOPBACK_HOST = "127.0.0.1"


def _handler(files: Mapping[str, bytes | Path]):
    class Files(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            found = files.get(path)
            if found is None:
                self.send_error(404)
                return
            body = found.read_bytes() if isinstance(found, Path) else found
            kind = mimetypes.guess_type(path)[0] or "text/html"
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: the test reads the page, not this server's log
            pass

    return Files


@contextmanager
def static_site(files: Mapping[str, bytes | Path]) -> Iterator[str]:
    """Serve `files` (URL path -> bytes, or a file to read) on a free loopback port; yield its origin."""
    server = ThreadingHTTPServer((LOOPBACK_HOST, 0), _handler(files))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
