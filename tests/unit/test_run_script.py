"""tests/run.sh says which Debian packages it installs before it installs them."""

import os
import re
import subprocess

from harness.paths import REPO_ROOT

RUN_SCRIPT = REPO_ROOT / "tests" / "run.sh"


def test_every_install_is_announced_first(tmp_path):
    script = RUN_SCRIPT.read_text(encoding="utf-8")
    helper = re.search(r"^apt_install\(\) \{\n.*?^\}\n", script, re.S | re.M).group(0)
    outside = script.replace(helper, "")
    assert "apt-get" not in "\n".join(line for line in outside.splitlines() if not line.lstrip().startswith("#"))
    assert len(re.findall(r"^\s+apt_install ", outside, re.M)) == 6
    (tmp_path / "apt-get").write_text('#!/bin/sh\necho "apt-get $*" >&2\n')
    (tmp_path / "apt-get").chmod(0o755)
    run = subprocess.run(
        ["sh", "-c", helper + "apt_install nginx redis-server"],
        env=dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        check=True,
    )
    said, updated, installed = run.stderr.splitlines()
    assert "installing the Debian packages nginx redis-server with apt-get" in said
    assert (updated, installed) == ("apt-get update -qq", "apt-get install -y -qq nginx redis-server")
