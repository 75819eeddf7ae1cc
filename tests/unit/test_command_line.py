"""One command line: `hf-infer` and `python -m service` are the same parser with every command."""

import subprocess
import sys
import tomllib

import pytest

from harness.paths import REPO_ROOT
from service import cli

COMMANDS = ("batch", "keys", "usage", "models", "settings")


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )


def test_hf_infer_is_the_command_line_main():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"hf-infer": "service.cli:main"}


def test_python_m_service_prints_the_same_help_with_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    in_process = capsys.readouterr().out
    answered = run_module("--help")
    assert answered.returncode == 0
    assert answered.stdout == in_process
    assert all(f"    {command} " in answered.stdout for command in COMMANDS), answered.stdout


def test_settings_writes_the_files_it_generates():
    assert run_module("settings", "--env").stdout == (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    markdown = run_module("settings", "--markdown")
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("| variable | default | meaning |")


@pytest.mark.parametrize(
    "argv", [["settings"], ["settings", "--env", "--markdown"], ["models", "--extra"], ["nonsense"], []]
)
def test_a_wrong_command_line_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith("usage: hf-infer")
