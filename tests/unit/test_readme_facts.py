"""What the README and docs/ state as facts agree with the code: the Python it needs, the
bounds of the args, and commands that paste into any shell (zsh globs an unquoted `?`)."""

import re
import tomllib

import pytest

from harness.paths import DOCS, README, REPO_ROOT
from service.api.schemas import ARGS_SCHEMAS

DOCUMENTS = [README, *sorted(DOCS.glob("*.md"))]


def test_the_python_the_readme_names_is_the_one_the_project_requires():
    required = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.fullmatch(r">=(\d+\.\d+)", required).group(1)
    assert f"Python {version} or newer" in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_url_with_a_query_in_a_command_is_quoted(document):
    unquoted = [
        line
        for line in document.read_text(encoding="utf-8").splitlines()
        if re.search(r"(^|\s)https?://\S*\?", line) and re.match(r"\s*(curl|wget|http)\b", line)
    ]
    assert unquoted == []


def test_the_args_table_states_each_text_bound_the_schema_enforces():
    table = {
        row.split("|")[1].strip(" `"): row.split("|")[3]
        for row in README.read_text(encoding="utf-8").splitlines()
        if row.startswith("| `")
    }
    [top_k] = ARGS_SCHEMAS["text-translation"].fields["top_k"].validators
    assert f"{top_k.min:,}..{top_k.max:,}" in table["top_k"]
