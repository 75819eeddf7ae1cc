"""Settings: read from the environment, checked, and written out as the docs show them."""

import pytest

from harness.paths import DOCS, REPO_ROOT
from service.cli import settings_docs
from service.settings import Settings, SettingsError


def test_settings_from_environment(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# comment\nk2\n\n")
    settings = Settings.from_env(
        {
            "HF_API_TOKEN": " t ",
            "TEXT_DEADLINE_SECONDS": "12.5",
            "API_KEYS": "k1, ,",
            "API_KEYS_FILE": str(keys),
            "HF_API_BASE": "http://x/",
        }
    )
    assert settings.hf_api_token == "t"
    assert settings.text_deadline == 12.5
    assert settings.api_keys == frozenset({"k1", "k2"})
    assert settings.hf_api_base == "http://x"
    assert Settings.from_env({}).hf_api_token is None


@pytest.mark.parametrize(
    "name, value",
    [
        ("TEXT_DEADLINE_SECONDS", "0"),
        ("TEXT_DEADLINE_SECONDS", "inf"),
        ("MAX_INPUT_CHARS", "-3"),
        ("IMAGE_DEADLINE_SECONDS", "soon"),
        ("CACHE_TTL_SECONDS", "-1"),
        ("CACHE_TTL_SECONDS", "nan"),
    ],
)
def test_bad_settings_fail_loudly(name, value):
    with pytest.raises(ValueError):
        Settings.from_env({name: value})


@pytest.mark.parametrize("pool, workers", [(5, 1024), (1024, 5)])
def test_pools_smaller_than_one_request_fan_out_are_refused(pool, workers):
    environ = {"FANOUT_CONCURRENCY": "10", "UPSTREAM_POOL_SIZE": str(pool), "FANOUT_WORKERS": str(workers)}
    with pytest.raises(SettingsError, match="must be at least FANOUT_CONCURRENCY"):
        Settings.from_env(environ)


def test_a_cache_ttl_of_zero_turns_the_cache_off():
    assert Settings.from_env({"CACHE_TTL_SECONDS": "0"}).cache_ttl == 0


def test_a_bad_value_names_its_variable():
    with pytest.raises(SettingsError, match="WORKER_CLASS"):
        Settings.from_env({"WORKER_CLASS": "eventlet"})


def test_env_example_says_what_the_declarations_say():
    assert (REPO_ROOT / ".env.example").read_text(encoding="utf-8") == settings_docs.env_example()


def test_configuration_doc_table_says_what_the_declarations_say():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings: written by `python -m service settings --markdown` -->\n", 1)[1]
    assert table.split("\n<!-- /settings -->", 1)[0] == settings_docs.markdown_table()


def test_every_declared_variable_is_documented_with_its_default():
    table = settings_docs.markdown_table()
    example = settings_docs.env_example()
    for name in ("HF_API_TOKEN", "WORKER_CLASS", "BODY_TIMEOUT_SECONDS", "UPSTREAM_POOL_SIZE", "API_KEYS"):
        assert f"`{name}`" in table and f"{name}=" in example
    assert "\n# WORKER_CLASS=gevent\n" in example and "\nHF_API_TOKEN=\n" in example
