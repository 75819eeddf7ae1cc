"""Read the examples of the README and docs/, so tests run them exactly as a user would paste them."""

import re
from pathlib import Path

from harness.paths import DOCS, README

OPERATIONS = DOCS / "operations.md"


def section(document: Path, title: str) -> str:
    """Return the text of one `## title` section of a Markdown document."""
    return document.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def curl_lines(document: Path, title: str) -> list:
    """Return the lines of one section that are curl commands."""
    return [line for line in section(document, title).splitlines() if line.startswith("curl ")]


def shell_blocks(document: Path, title: str) -> list:
    """Return the ```sh blocks of one section."""
    return re.findall(r"```sh\n(.*?)```", section(document, title), re.S)


__all__ = ["OPERATIONS", "README", "curl_lines", "section", "shell_blocks"]
