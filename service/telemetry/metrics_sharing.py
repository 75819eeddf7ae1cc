"""How the workers share their metrics.

Under gunicorn the workers are separate processes: prometheus_client's multiprocess mode
makes each write its values to files in PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker
adds them all up. The master prepares that directory before the first worker forks.
"""

import glob
import os
import tempfile

from prometheus_client import multiprocess, values

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory() -> str | None:
    """Return the directory the workers share their metrics through, None in a single process."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def enable_multiprocess(directory: str) -> None:
    """Make this process, and every process it forks, write its metrics to `directory`."""
    os.environ[MULTIPROC_DIR_VARIABLE] = directory
    # prometheus_client picks its value store once, when imported; gunicorn's master has
    # imported it (through gunicorn.conf.py) before any hook could set the variable.
    values.ValueClass = values.get_value_class()


def prepare_multiprocess_directory() -> tuple[str, bool]:
    """Enable multiprocess mode in an empty directory; tell whether it was created here.

    The operator's PROMETHEUS_MULTIPROC_DIR is used when set, emptied of a previous run's
    files (they would be added to this run's totals); otherwise a fresh temporary one.
    """
    directory = multiprocess_directory()
    created = directory is None
    if created:
        directory = tempfile.mkdtemp(prefix="hf-gateway-metrics-")
    else:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    enable_multiprocess(directory)
    return directory, created


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's in-flight gauge; its counters and histograms stay in the totals."""
    if multiprocess_directory():
        multiprocess.mark_process_dead(pid)
