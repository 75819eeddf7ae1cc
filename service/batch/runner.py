"""Running a batch: a pool of worker threads, a bounded window, results written in order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

from service.batch.gateway_client import GatewayClient, Interrupted
from service.batch.image_files import save_images
from service.batch.inputs import BatchItem
from service.batch.output import OrderedWriter

POLL_SECONDS = 0.1
# Items sent ahead of the oldest unwritten one, per worker: keeps workers busy behind a slow
# line while bounding how many finished results wait in memory for it.
WINDOW_PER_WORKER = 4


def result_record(client: GatewayClient, item: BatchItem, images_dir: Path | None) -> dict:
    """Run one item and return its line: {"id", "result"} or {"id", "error"}."""
    outcome = client.infer(item)
    if outcome.error is not None:
        return {"id": item.id, "error": outcome.error}
    result = save_images(outcome.result, item.id, images_dir) if images_dir else outcome.result
    return {"id": item.id, "result": result}


class WorkerPool:
    """Daemon threads that turn (position, item) into (position, line).

    Daemon threads, so that an interrupted run exits at once instead of waiting for the
    requests still in flight: their lines are simply not written, and a resumed run redoes them.
    """

    def __init__(self, handle: Callable[[BatchItem], dict], size: int):
        self.size = size
        self._handle = handle
        self._todo: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        for number in range(size):
            threading.Thread(target=self._work, name=f"hf-infer-{number}", daemon=True).start()

    def _work(self) -> None:
        """Handle items until the process ends."""
        while True:
            position, item = self._todo.get()
            try:
                line = self._handle(item)
            except Interrupted:
                continue
            except Exception as exc:  # a result that cannot be saved still gets its line
                line = {"id": item.id, "error": {"status": None, "error_type": "client_error", "message": str(exc)}}
            self._done.put((position, line))

    def submit(self, position: int, item: BatchItem) -> None:
        """Queue one item."""
        self._todo.put((position, item))

    def next_done(self, timeout: float) -> tuple[int, dict] | None:
        """Return the next finished (position, line), None when none came within timeout."""
        try:
            return self._done.get(timeout=timeout)
        except queue.Empty:
            return None

    def finished_so_far(self) -> list[tuple[int, dict]]:
        """Return every finished (position, line) not yet taken, without waiting."""
        finished = []
        while (done := self.next_done(timeout=0)) is not None:
            finished.append(done)
        return finished


def run_batch(
    items: list[BatchItem],
    pool: WorkerPool,
    writer: OrderedWriter,
    stop: threading.Event,
    on_done: Callable[[dict], None] = lambda line: None,
) -> bool:
    """Send every item and write every line in order; False when stopped before the end."""
    window = pool.size * WINDOW_PER_WORKER
    submitted = 0
    while writer.written < len(items):
        if stop.is_set():
            for position, line in pool.finished_so_far():
                writer.add(position, line)
            return writer.written == len(items)
        while submitted < len(items) and submitted - writer.written < window:
            pool.submit(submitted, items[submitted])
            submitted += 1
        done = pool.next_done(POLL_SECONDS)
        if done is not None:
            writer.add(*done)
            on_done(done[1])
    return True
