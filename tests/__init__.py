"""The test suite and its support code (the servers it shares with the benchmark live in harness/).

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
# A clone made right in the temporary directory has the tests' own temporary files beside it:
# those stay readable. Anywhere else, nothing beside the clone is.
_TEMPORARY = tempfile.gettempdir() + os.sep
_OWN_TEMPORARY = re.compile(re.escape(_TEMPORARY) + r"(pytest-of-|tmp)") if _OUTSIDE == _TEMPORARY else None


def _refuse_reads_beside_the_repository(event: str, args: tuple) -> None:
    """Fail any open() of a file next to the repository: a fresh clone has nothing there."""
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if (path + os.sep).startswith(_INSIDE) or (_OWN_TEMPORARY and _OWN_TEMPORARY.match(path)):
        return
    if path.startswith(_OUTSIDE):
        raise PermissionError(f"the tests may read only inside the repository, not {path}")


sys.addaudithook(_refuse_reads_beside_the_repository)
