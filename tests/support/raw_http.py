"""Reading one HTTP answer off a raw socket, for tests that must send what no client would."""

import socket


def read_http_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Read one HTTP answer (status, lower-cased headers, body of its Content-Length); raise if
    the connection closes before the head is whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]
