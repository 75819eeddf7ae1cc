"""The pidfile, and the documented upgrade (docs/deployment.md), against real gunicorn.

The upgrade runs on a copy of the project in a temporary folder, as an operator runs it on a
server: its code is changed while the service runs, then gunicorn's master is re-executed
with USR2 and the old master stopped with TERM, with requests flowing all along.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from harness.gunicorn_server import GunicornServer
from harness.paths import DOCS, REPO_ROOT
from tests.support.fault_service import RequestStream, booted_workers, fault_env, write_models_config
from tests.support.waiting import wait_until

DEPLOYMENT = DOCS / "deployment.md"
NEW_HEALTH = '{"status": "ok", "code": "upgraded"}'
# What a server holds of the project: no tests, no benchmark, no virtualenv, no store.
NOT_DEPLOYED = shutil.ignore_patterns(".git", ".venv", "data", "tests", "bench", "docs", "__pycache__", "*.egg-info")


class ScriptGunicorn(GunicornServer):
    """gunicorn started as start.sh and the unit start it, by its script: a USR2 re-executes the
    master's own command line, and `python -m gunicorn` would come back as gunicorn's
    __main__.py, whose folder (gunicorn's own `http` package) hides the standard library's."""

    @property
    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "gunicorn"), "-c", str(self.config), self.app]


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def shell(script: str, **env: str) -> None:
    """Run one documented step as an operator would, with `env` set."""
    subprocess.run(["sh", "-e", "-c", script], env=dict(os.environ, **env), check=True, timeout=30)


def test_the_pidfile_names_the_master_and_a_reload_through_it_replaces_the_workers(loopback, tmp_path):
    pidfile = tmp_path / "run" / "gunicorn.pid"
    pidfile.parent.mkdir()
    env = fault_env(loopback, write_models_config(tmp_path), PIDFILE=str(pidfile))
    server = GunicornServer(env=env, log_path=tmp_path / "service.log").start()
    try:
        assert read_pid(pidfile) == server.pid
        before = booted_workers(server)
        shell('kill -HUP "$(cat "$PIDFILE")"', PIDFILE=str(pidfile))
        assert wait_until(lambda: not set(server.worker_pids()) & set(before)), server.log_tail()
        assert len(booted_workers(server)) == len(before)
    finally:
        assert server.stop() == 0
    assert not pidfile.exists()  # a stopped master leaves no pid behind for another process to take


def deployed_copy(tmp_path: Path, loopback, **overrides) -> tuple[Path, ScriptGunicorn]:
    """A copy of the project as a server holds it, and its service (not started)."""
    project = tmp_path / "hf-gateway"
    shutil.copytree(REPO_ROOT, project, ignore=NOT_DEPLOYED)
    (project / "data").mkdir()
    env = fault_env(
        loopback,
        write_models_config(tmp_path),
        PIDFILE="data/gunicorn.pid",  # relative: the project folder, where the service runs
        DATA_DIR=str(project / "data"),
        PYTHONPATH=str(project),  # this copy's code, never the repository's installed one
        **overrides,
    )
    return project, ScriptGunicorn(env=env, repo_root=project, log_path=tmp_path / "service.log")


def change_the_code(project: Path) -> None:
    """What a `git pull` does, as far as the running service can tell: its code changed."""
    health = project / "service" / "api" / "health.py"
    health.write_text(health.read_text().replace('{"status": "ok"}', NEW_HEALTH))


def test_a_reload_brings_new_configuration_but_not_new_code(loopback, tmp_path):
    project, server = deployed_copy(tmp_path, loopback)
    server.start()
    try:
        before = booted_workers(server)
        change_the_code(project)
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: not set(server.worker_pids()) & set(before)), server.log_tail()
        booted_workers(server)
        assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}  # the old code
    finally:
        assert server.stop() == 0


def documented_upgrade_steps() -> dict:
    """The zero-downtime upgrade of docs/deployment.md, by the comment that ends each line."""
    section = DEPLOYMENT.read_text(encoding="utf-8").split("\n## Upgrades\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n# Without systemd", 1)[1].split("```", 1)[0]
    steps = {}
    for line in block.splitlines():
        command, _, name = line.partition("# step: ")
        if name:
            steps[name.strip()] = command.strip()
    return steps


def test_the_upgrade_without_systemd_serves_the_new_code_and_drops_no_request(loopback, tmp_path, worker_class):
    steps = documented_upgrade_steps()
    assert list(steps) == ["re-exec", "wait", "stop-old"]
    project, server = deployed_copy(tmp_path, loopback, WORKER_CLASS=worker_class)
    pidfile = project / "data" / "gunicorn.pid"
    server.start()
    old_master = server.pid
    new_master = None
    try:
        assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
        with RequestStream(server.url, concurrency=4) as stream:
            stream.wait_for(20)
            change_the_code(project)
            for name in ("re-exec", "wait", "stop-old"):
                shell(steps[name], PIDFILE=str(pidfile))
            new_master = read_pid(Path(f"{pidfile}.2"))
            assert new_master not in (None, old_master)
            assert wait_until(lambda: not alive(old_master)), server.log_tail()
            assert wait_until(lambda: read_pid(pidfile) == new_master), server.log_tail()  # promoted
            upgraded = requests.get(server.url + "/healthz", timeout=5).json()
            after = stream.total
            stream.wait_for(after + 20)
        assert upgraded == {"status": "ok", "code": "upgraded"}
        assert stream.failures == [], server.log_tail()
        assert stream.outcomes["ok"] >= after + 20
        assert not Path(f"{pidfile}.2").exists()
    finally:
        # Whatever master the steps left (the new one, or one a failed step started), stopped too.
        masters = {new_master, read_pid(pidfile), read_pid(Path(f"{pidfile}.2"))} - {None, old_master}
        for master in masters:
            if alive(master):
                os.kill(master, signal.SIGTERM)
                assert wait_until(lambda master=master: not alive(master)), server.log_tail()
        server.stop()
    assert "WORKER TIMEOUT" not in server.log_text()
