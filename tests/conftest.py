"""Fixtures and guards shared by every test module."""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_OUTSIDE = str(REPO_ROOT.parent) + os.sep
_INSIDE = str(REPO_ROOT) + os.sep


def _refuse_reads_beside_the_repository(event: str, args: tuple) -> None:
    """Fail any open() of a file next to the repository: a fresh clone has nothing there."""
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path.startswith(_OUTSIDE) and not (path + os.sep).startswith(_INSIDE):
        raise PermissionError(f"the tests may read only inside the repository, not {path}")


sys.addaudithook(_refuse_reads_beside_the_repository)
