"""`hf-infer keys add` says which key file the service reads, and warns when a key it adds
would never be read: no API_KEYS_FILE configured (the service stays open to everyone), or a
--file that is not the service's."""

import pytest

from service import cli
from service.cli import keys as command


@pytest.fixture
def no_dotenv(tmp_path, monkeypatch):
    """No API_KEYS_FILE in the environment and a .env of our own."""
    monkeypatch.delenv("API_KEYS_FILE", raising=False)
    dotenv = tmp_path / ".env"
    monkeypatch.setattr(command, "DOTENV_FILE", dotenv)
    return dotenv


def test_without_api_keys_file_the_key_is_added_with_a_warning_that_the_service_reads_none(
    tmp_path, no_dotenv, monkeypatch, capsys
):
    monkeypatch.setattr(command, "DEFAULT_KEY_FILE", tmp_path / "config" / "keys.toml")
    (tmp_path / "config").mkdir()
    assert cli.main(["keys", "add", "nightly"]) == 0
    err = capsys.readouterr().err
    assert f"added key nightly to {tmp_path / 'config' / 'keys.toml'}" in err
    assert "API_KEYS_FILE is not set" in err and "open to everyone" in err
    assert f"set API_KEYS_FILE={tmp_path / 'config' / 'keys.toml'} in {no_dotenv}" in err
    assert "is the key file the service reads" not in err


def test_the_key_file_the_service_reads_is_named(tmp_path, no_dotenv, capsys):
    path = tmp_path / "team.toml"
    no_dotenv.write_text(f"API_KEYS_FILE={path}\n")
    assert cli.main(["keys", "add", "nightly"]) == 0
    err = capsys.readouterr().err
    assert f"added key nightly to {path}." in err
    assert f"{path} is the key file the service reads (API_KEYS_FILE in {no_dotenv}): reload the service" in err
    assert "warning" not in err


def test_a_file_the_service_does_not_read_is_a_warning(tmp_path, no_dotenv, monkeypatch, capsys):
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "served.toml"))
    assert cli.main(["keys", "add", "nightly", "--file", str(tmp_path / "other.toml")]) == 0
    err = capsys.readouterr().err
    assert f"warning: the service reads {tmp_path / 'served.toml'} (API_KEYS_FILE in the environment)" in err
    assert f"not {tmp_path / 'other.toml'}" in err


def test_a_plain_key_file_configured_is_named_when_adding_to_a_toml_one(tmp_path, no_dotenv, monkeypatch, capsys):
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "keys.txt"))
    assert cli.main(["keys", "add", "nightly", "--file", str(tmp_path / "keys.toml")]) == 0
    assert f"the service reads {tmp_path / 'keys.txt'}" in capsys.readouterr().err
