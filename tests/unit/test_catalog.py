"""The model configuration: the shipped file loads, and broken files fail at start-up."""

import tomllib

import pytest

from service.catalog import Catalog, CatalogError, is_valid_model_name
from service.errors import InvalidRequest, UnknownTask
from service.hub.providers import Providers
from service.settings import DEFAULT_MODELS_CONFIG, Settings

MINIMAL = """
[tasks.text-translation]
default_pair = "zh2en"
[tasks.text-translation.pairs]
zh2en = ["a/b"]
[tasks.text-completion]
targets = ["c"]
[tasks.text-to-text]
targets = ["d"]
[tasks.text-to-image]
targets = ["e"]
"""


def catalog(extra: str = "", base: str = MINIMAL) -> Catalog:
    return Catalog(tomllib.loads(base + extra))


def test_shipped_configuration_serves_every_task_and_both_directions():
    shipped = Catalog.from_file(DEFAULT_MODELS_CONFIG)
    for task in ("text-completion", "text-to-text", "text-to-image"):
        assert shipped.route(task, None, None).targets
    for pair in ("zh2en", "en2zh"):
        assert shipped.route("text-translation", None, pair).targets
    assert shipped.route("text-translation", None, None).pair.name == "zh2en"


@pytest.mark.parametrize(
    "extra, base",
    [
        ('[models.x]\nprotocol = "grpc"\n', MINIMAL),
        ('[models.x]\nurl = "ftp://host"\n', MINIMAL),
        ('[aliases]\n"bad alias" = "a/b"\n', MINIMAL),
        ("", MINIMAL.replace('targets = ["c"]', "targets = []")),
        ("", MINIMAL.replace('default_pair = "zh2en"', 'default_pair = "en2zh"')),
        ("", MINIMAL.replace('zh2en = ["a/b"]', 'chinese = ["a/b"]')),
        ("", MINIMAL.replace('targets = ["e"]', 'targets = ["http://evil/x"]')),
    ],
)
def test_invalid_configuration_fails_at_start_up(extra, base):
    with pytest.raises(CatalogError):
        Providers.from_settings(Settings()).check(catalog(extra, base))


def test_unreadable_file_is_a_catalog_error(tmp_path):
    broken = tmp_path / "models.toml"
    broken.write_text("[tasks\n")
    with pytest.raises(CatalogError):
        Catalog.from_file(broken)
    with pytest.raises(CatalogError):
        Catalog.from_file(tmp_path / "missing.toml")


def test_unknown_hub_ids_use_hf_inference():
    target = catalog().target("org/new-model")
    assert (target.id, target.protocol, target.url) == ("org/new-model", "hf-inference", None)


def test_route_errors():
    with pytest.raises(UnknownTask):
        catalog().route("summarize", None, None)
    with pytest.raises(InvalidRequest):
        catalog().route("text-translation", None, "en2zh")


@pytest.mark.parametrize(
    "name, valid",
    [
        ("gpt2", True),
        ("org/name-1.5_b", True),
        ("a..b", False),
        ("org/", False),
        ("/x", False),
        ("a/b/c", False),
        ("x" * 97, False),
    ],
)
def test_model_name_rule(name, valid):
    assert is_valid_model_name(name) is valid
