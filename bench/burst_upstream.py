"""An upstream for bursts: thousands of connections at once, every answer after exactly `delay`.

The loopback upstream of the tests gives each connection a thread; a burst of 4,096 needs
something lighter, or the reference it gives would be slow itself. This one is one asyncio
loop, answering any POST after `--delay` seconds with a recorded answer (a chat completion on
chat routes, a text generation elsewhere), or never (`--hang`, for the hung-upstream figures).

    python -m bench.burst_upstream --port 0 --delay 2
prints `READY <port>` once it accepts connections and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from harness import recordings

# Recorded answers of the hosted route and of the router (tests/recordings/).
GENERATION_PATH = "/hf-inference/models/openai-community/gpt2"
CHAT_PATH = "/hf-inference/models/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions"
BACKLOG = 8192


def answer_bytes(recorded_path: str, file: str) -> bytes:
    """One whole HTTP answer, framed for keep-alive."""
    body = recordings.recorded_body(recorded_path, file, binary=False)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: dict, delay: float, hang: bool
) -> None:
    """Answer each request of one connection after `delay` (or never)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            if hang:
                await reader.read()  # until the client gives up
                return
            await asyncio.sleep(delay)
            chat = head.split(b" ", 2)[1].split(b"?")[0].endswith(b"/chat/completions")
            writer.write(answers["chat" if chat else "generation"])
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int, delay: float, hang: bool) -> None:
    """Serve until SIGTERM or SIGINT."""
    answers = {
        "generation": answer_bytes(GENERATION_PATH, recordings.HOSTED_FILE),
        "chat": answer_bytes(CHAT_PATH, recordings.PROVIDERS_FILE),
    }
    server = await asyncio.start_server(
        lambda reader, writer: serve_connection(reader, writer, answers, delay, hang),
        "127.0.0.1",
        port,
        backlog=BACKLOG,
    )
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.burst_upstream")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--hang", action="store_true", help="read each request and never answer it")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.delay, arguments.hang))
    sys.exit(0)
