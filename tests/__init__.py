"""The test suite and its support code (the benchmark uses the support code too).

Importing this package first installs a guard: any open() of a file beside the repository
fails, so what passes here passes in a fresh clone with nothing next to it.
"""

import os
import re
import sys
import tempfile
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
_OUTSIDE = str(_REPO_ROOT.parent) + os.sep
_INSIDE = str(_REPO_ROOT) + os.sep
# Temporary files the tests make themselves stay readable even in a clone made in /tmp.
_OWN_TEMPORARY = re.compile(re.escape(tempfile.gettempdir() + os.sep) + r"(pytest-of-|tmp)")


def _refuse_reads_beside_the_repository(event: str, args: tuple) -> None:
    """Fail any open() of a file next to the repository: a fresh clone has nothing there."""
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if _OWN_TEMPORARY.match(path) or (path + os.sep).startswith(_INSIDE):
        return
    if path.startswith(_OUTSIDE):
        raise PermissionError(f"the tests may read only inside the repository, not {path}")


sys.addaudithook(_refuse_reads_beside_the_repository)
