"""The deadline cuts an exchange however slowly the upstream trickles its headers or chunks."""

import socket
import threading
import time

import pytest

from service.errors import ConnectionsBusy, UpstreamTimeout
from service.hub import transport
from service.hub.deadline import Deadline
from service.hub.messages import UpstreamRequest

SLOW_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 10_000
SLOW_CHUNK_LINE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 10_000
)


class TrickleServer:
    """A loopback server that answers every request with `answer`, one byte every `pause`."""

    def __init__(self, answer: bytes, pause: float = 0.05):
        self.answer, self.pause = answer, pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection):
        with connection:
            connection.recv(65536)
            for position in range(len(self.answer)):
                if self.stopped.is_set():
                    return
                try:
                    connection.sendall(self.answer[position : position + 1])
                except OSError:
                    return
                time.sleep(self.pause)

    def stop(self):
        self.stopped.set()
        self.listener.close()


@pytest.mark.parametrize("answer", [SLOW_HEADERS, SLOW_CHUNK_LINE], ids=["headers", "chunk-size line"])
def test_a_trickling_upstream_is_cut_at_the_deadline(answer):
    server = TrickleServer(answer)
    session = transport.SessionPool(4).get()
    request = UpstreamRequest(url=f"http://127.0.0.1:{server.port}/x", payload={"inputs": "x"})
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout):
            transport.send(session, request, Deadline(1.0), 1.0, 1024 * 1024)
    finally:
        server.stop()
    # Without the watchdog each byte restarts the read timeout and this takes minutes.
    assert time.monotonic() - started < 1.5


def test_connections_all_busy_until_the_deadline_is_the_gateways_limit_not_the_targets():
    server = TrickleServer(SLOW_HEADERS)
    session = transport.SessionPool(1).get()  # one connection per upstream host
    request = UpstreamRequest(url=f"http://127.0.0.1:{server.port}/x", payload={"inputs": "x"})
    holder = threading.Thread(
        target=lambda: pytest.raises(UpstreamTimeout, transport.send, session, request, Deadline(2.0), 1.0, 1024 * 1024)
    )
    holder.start()
    time.sleep(0.3)  # the only connection is taken
    try:
        with pytest.raises(ConnectionsBusy, match="no upstream connection became free"):
            transport.send(session, request, Deadline(0.5), 1.0, 1024 * 1024)
    finally:
        holder.join()
        server.stop()
