"""Where things are in the repository, for tests and the benchmark."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
RECORDINGS_DIR = REPO_ROOT / "tests" / "recordings"
