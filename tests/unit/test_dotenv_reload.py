"""`.env` read again at a reload: what the file set is updated or removed, what the process was
started with always wins."""

import os

import pytest

from service import settings as settings_module
from service.settings import Settings, load_dotenv_file


@pytest.fixture
def dotenv(tmp_path, monkeypatch):
    """A `.env` of the test's own, read into an environment the test restores."""
    path = tmp_path / ".env"
    monkeypatch.setattr(settings_module, "_names_from_dotenv", frozenset())
    saved = dict(os.environ)
    yield path
    os.environ.clear()
    os.environ.update(saved)


def test_a_second_read_updates_what_the_file_set(dotenv, monkeypatch):
    monkeypatch.delenv("TEXT_DEADLINE_SECONDS", raising=False)
    dotenv.write_text("TEXT_DEADLINE_SECONDS=7\n", encoding="utf-8")
    load_dotenv_file(dotenv)
    assert Settings.from_env(dict(os.environ)).text_deadline == 7
    dotenv.write_text("TEXT_DEADLINE_SECONDS=9\n", encoding="utf-8")
    load_dotenv_file(dotenv)
    assert os.environ["TEXT_DEADLINE_SECONDS"] == "9"


def test_a_variable_removed_from_the_file_is_removed(dotenv, monkeypatch):
    monkeypatch.delenv("TEXT_DEADLINE_SECONDS", raising=False)
    dotenv.write_text("TEXT_DEADLINE_SECONDS=7\n", encoding="utf-8")
    load_dotenv_file(dotenv)
    dotenv.write_text("", encoding="utf-8")
    load_dotenv_file(dotenv)
    assert "TEXT_DEADLINE_SECONDS" not in os.environ


def test_the_process_own_variables_are_never_overridden(dotenv, monkeypatch):
    monkeypatch.setenv("TEXT_DEADLINE_SECONDS", "5")
    dotenv.write_text("TEXT_DEADLINE_SECONDS=7\n", encoding="utf-8")
    load_dotenv_file(dotenv)
    load_dotenv_file(dotenv)
    assert os.environ["TEXT_DEADLINE_SECONDS"] == "5"
