"""A non-editable install carries every file the service reads besides its code: the page, the
store's Lua scripts, the demo's recordings and catalog."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tracked_data_files() -> list[str]:
    """Every file of the package under version control that is not Python source."""
    listed = subprocess.run(
        ["git", "ls-files", "service"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(path for path in listed if not path.endswith(".py"))


def test_every_data_file_of_the_package_is_installed(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(built)],
        cwd=source,
        capture_output=True,
        check=True,
    )
    data_files = tracked_data_files()
    assert any(path.startswith("service/demo/") for path in data_files)
    assert [path for path in data_files if not (built / path).is_file()] == []
