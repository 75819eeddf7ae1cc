"""The workers' shared metrics directory: prepared by the master, emptied of a previous run,
removed at exit, and a dead worker's in-flight gauge dropped."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import values

from service.serving import hooks
from service.telemetry import metrics_sharing


@pytest.fixture
def restore_value_class(monkeypatch):
    """Undo what enabling multiprocess mode does to this test process."""
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.delenv(metrics_sharing.MULTIPROC_DIR_VARIABLE, raising=False)
    return monkeypatch


def test_an_operators_directory_is_emptied_of_a_previous_run_and_kept(restore_value_class, tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    restore_value_class.setenv(metrics_sharing.MULTIPROC_DIR_VARIABLE, str(tmp_path))
    directory, created = metrics_sharing.prepare_multiprocess_directory()
    assert (directory, created) == (str(tmp_path), False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert values.ValueClass is not values.MutexValue


def test_gunicorn_hooks_create_share_and_remove_a_temporary_directory(restore_value_class, tmp_path):
    server = SimpleNamespace(log=SimpleNamespace(info=lambda *args: None), reload=lambda: None)
    hooks.on_starting(server)
    directory = Path(os.environ[metrics_sharing.MULTIPROC_DIR_VARIABLE])
    assert directory.is_dir() and not any(directory.iterdir())
    assert values.ValueClass is not values.MutexValue
    hooks.on_exit(server)
    assert not directory.exists()


def test_child_exit_drops_only_the_dead_workers_live_gauge(restore_value_class, tmp_path):
    restore_value_class.setenv(metrics_sharing.MULTIPROC_DIR_VARIABLE, str(tmp_path))
    for name in ("gauge_livesum_41.db", "gauge_livesum_42.db", "counter_41.db"):
        (tmp_path / name).write_bytes(b"")
    hooks.child_exit(SimpleNamespace(), SimpleNamespace(pid=41))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counter_41.db", "gauge_livesum_42.db"]
