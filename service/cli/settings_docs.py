"""The settings, written out from their declarations: `.env.example` and the table of
docs/configuration.md (`python -m service settings --env` or `--markdown`). A test checks that
both files say what these functions print."""

from pathlib import Path

from service.settings import PROJECT_ROOT, variables

ENV_HEADER = """# Copy to .env and fill in. .env is ignored by git: never commit a token.
# Every variable is optional but HF_API_TOKEN; the defaults are shown commented out.
# Written by `python -m service settings --env` from service/settings.py.
"""
TABLE_HEADER = "| variable | default | meaning |\n| --- | --- | --- |"


def in_project(path: Path) -> Path:
    """A default path inside the project, as the project's own files name it (relative)."""
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


def default_text(declared) -> str:
    """Show a declared default as the docs write it."""
    shown = declared.metadata["shown"]
    if shown is not None:
        return shown
    value = declared.default
    if isinstance(value, Path):
        return f"`{in_project(value)}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def env_value(declared) -> str:
    """Show a declared default as a value in .env."""
    value = declared.default
    if isinstance(value, Path):
        return str(in_project(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None or value == frozenset() else str(value)


def markdown_table() -> str:
    """Return the table of every variable, grouped as declared."""
    rows, group = [], None
    for declared in variables():
        if declared.metadata["group"] != group:
            group = declared.metadata["group"]
            rows.append(f"| **{group}** | | |")
        rows.append(f"| `{declared.metadata['variable']}` | {default_text(declared)} | {declared.metadata['doc']} |")
    return "\n".join([TABLE_HEADER, *rows])


def env_example() -> str:
    """Return .env.example: the token to fill in, every other variable commented out at its default."""
    lines, group = [ENV_HEADER.rstrip()], None
    for declared in variables():
        name = declared.metadata["variable"]
        if declared.metadata["group"] != group:
            group = declared.metadata["group"]
            lines += ["", f"# {group}"]
        lines.append(f"# {declared.metadata['doc']}")
        if name == "HF_API_TOKEN":
            lines.append(f"{name}=")
        elif declared.metadata["shown"] == "number of cores":
            lines.append(f"# {name}=<number of cores>")
        else:
            lines.append(f"# {name}={env_value(declared)}")
    return "\n".join(lines) + "\n"
