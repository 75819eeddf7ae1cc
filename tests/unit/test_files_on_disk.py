"""The watch on the configuration files: a broken file is reported once, until it is mended."""

import logging
import os

import pytest

from harness.keys import write_key_file
from service import create_app
from service.catalog import Catalog
from service.hub.providers import Providers
from service.keys.keyring import KeyRing
from service.serving import configuration
from service.serving.configuration import Configuration, FilesOnDisk
from service.settings import SettingsError
from service.telemetry import metrics
from tests.support.app import make_settings
from tests.support.fault_service import write_models_config


def gauge() -> float:
    return metrics.families().configuration_broken._value.get()


def test_a_broken_key_file_is_reported_until_it_is_mended(tmp_path, caplog):
    key_file = write_key_file(tmp_path / "keys.toml", {"ops": {"secret": "s-1"}})
    files = FilesOnDisk(make_settings(models_config=write_models_config(tmp_path), api_keys_file=key_file))
    assert files.problem() is None and gauge() == 0

    with key_file.open("a", encoding="utf-8") as file:
        file.write("\n[keys.bad\n")
    with caplog.at_level(logging.ERROR, logger="service.configuration"):
        first, second = files.problem(), files.problem()
    assert "keys.toml" in first and first == second
    assert gauge() == 1
    assert len([r for r in caplog.records if "cannot be loaded" in r.getMessage()]) == 1  # once, not per check

    write_key_file(key_file, {"ops": {"secret": "s-1"}})
    assert files.problem() is None and gauge() == 0


def test_a_missing_model_configuration_is_a_problem(tmp_path):
    settings = make_settings(models_config=write_models_config(tmp_path))
    files = FilesOnDisk(settings)
    assert files.problem() is None
    settings.models_config.unlink()
    assert "models" in files.problem()


def test_files_are_read_again_only_when_one_changed(tmp_path):
    reads = []
    files = FilesOnDisk(make_settings(models_config=write_models_config(tmp_path)), reader=lambda: reads.append(1))
    for _ in range(5):
        files.problem()
    assert len(reads) == 1


def test_a_worker_fails_open_on_a_store_that_broke_after_its_master_started(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.write_text("a file where the data directory should be")
    settings = make_settings(store="sqlite", data_dir=data, models_config=write_models_config(tmp_path))
    catalog = Catalog.from_file(settings.models_config)
    with pytest.raises(SettingsError, match="DATA_DIR"):
        create_app(settings, catalog)  # a start (the master's check) is refused
    accepted = Configuration(settings, catalog, KeyRing.from_settings(settings))
    monkeypatch.setattr(configuration, "_accepted", (os.getpid() + 1, accepted))  # as in a forked worker
    worker_app = create_app()
    assert worker_app.extensions["gateway"].store.enabled  # kept, failing open until it works


def test_the_files_watched_are_those_the_settings_on_disk_name(tmp_path):
    first, second = write_models_config(tmp_path), tmp_path / "other-models.toml"
    second.write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    running = make_settings(models_config=first)
    on_disk = [running]
    files = FilesOnDisk(running, reader=lambda: read_files_as(on_disk[0]))
    assert files.problem() is None
    on_disk[0] = make_settings(models_config=second)  # `.env` now names another model file...
    first.write_text(first.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # ...and something changed
    assert files.problem() is None
    with second.open("a", encoding="utf-8") as file:
        file.write("\n[tasks.text-to-image\n")  # the file now named breaks
    assert "other-models.toml" in files.problem()


def read_files_as(settings):
    """read_files, with the settings `.env` would make given by the test."""
    Providers.from_settings(settings).check(Catalog.from_file(settings.models_config))
    return settings
