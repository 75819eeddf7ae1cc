"""The guard installed by `tests/__init__.py`: nothing beside the repository may be read."""

import pytest

from harness.paths import README, REPO_ROOT


def test_a_file_beside_the_repository_cannot_be_opened():
    # Refused before the file system is asked: whether anything is there makes no difference.
    beside = REPO_ROOT.parent / "a-folder-beside-the-repository" / "notes.md"
    with pytest.raises(PermissionError, match="only inside the repository"):
        open(beside, encoding="utf-8")


def test_files_inside_the_repository_and_elsewhere_can_be_opened(tmp_path):
    (tmp_path / "scratch.txt").write_text("ok", encoding="utf-8")
    assert (tmp_path / "scratch.txt").read_text(encoding="utf-8") == "ok"
    assert README.read_text(encoding="utf-8").startswith("# hf-gateway")
