"""`hf-infer ... | head`: a reader that leaves early ends the command quietly, as `cat` or
`grep` would, never with a BrokenPipeError traceback."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.paths import REPO_ROOT

ROW = {
    "date": "2026-11-30",
    "key": "nightly-batch",
    "model": "google/madlad400-3b-mt",
    "requests": 1,
    "results": 1,
    "images": 0,
    "errors": {},
    "upstream_attempts": 1,
    "upstream_seconds": 0.5,
    "input_chars": 3,
    "prompt_tokens": 0,
    "completion_tokens": 0,
}
# Well over a pipe's buffer, so that writing it meets the closed pipe.
USAGE = {"since": "2026-11-24", "until": "2026-11-30", "rows": [ROW] * 5000, "totals": ROW}


class UsageHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(USAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def usage_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), UsageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("output_format", ["json", "csv", "table"])
def test_usage_into_head_ends_quietly(usage_server, tmp_path, output_format):
    command = f"{sys.executable} -m service usage --url {usage_server} --format {output_format}"
    run = subprocess.run(
        ["sh", "-c", f"{command} 2>{tmp_path / 'err'} | head -n 2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(run.stdout.splitlines()) == 2
    assert (tmp_path / "err").read_text() == ""
