"""Read the README's examples, so tests run them exactly as a user would paste them."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(title: str) -> str:
    """Return the text of one `## title` section of the README."""
    return README.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def curl_lines(title: str) -> list:
    """Return the lines of one README section that are curl commands."""
    return [line for line in readme_section(title).splitlines() if line.startswith("curl ")]


def shell_blocks(title: str) -> list:
    """Return the ```sh blocks of one README section."""
    return re.findall(r"```sh\n(.*?)```", readme_section(title), re.S)
