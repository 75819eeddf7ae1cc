"""Running the store's Lua scripts on Redis: the scripts themselves (service/store/lua/) and the
connections the two scripts of every request run on."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import redis

LUA = Path(__file__).resolve().parent / "lua"
# Connections one worker may have open to Redis; more callers wait for one within the timeout.
POOL_SIZE = 64


def lua_script(name: str) -> str:
    """One of the Lua scripts Redis runs (service/store/lua/), each atomic on the server."""
    return (LUA / f"{name}.lua").read_text(encoding="utf-8")


class ScriptRunner:
    """Runs the two scripts of every request on connections of its own.

    redis-py's pool checks, measures and locks on every borrow, which under gevent costs more
    than the round trip itself; these connections are borrowed from a plain list, at most
    POOL_SIZE at once. The connections are redis-py's own (protocol, auth, TLS, reconnects).
    """

    def __init__(self, pool: redis.ConnectionPool, client: redis.Redis, timeout: float):
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        self._client = client
        self._timeout = timeout
        self._idle: list = []
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._pid = os.getpid()

    def send(self, script, keys: list, arguments: list):
        """Send EVALSHA on a borrowed connection; return it, to `receive` on."""
        if self._pid != os.getpid():  # a forked worker never shares its parent's sockets
            self._idle, self._pid = [], os.getpid()
        if not self._slots.acquire(timeout=self._timeout):
            raise redis.ConnectionError(f"no Redis connection free within {self._timeout} s")
        connection = self._idle.pop() if self._idle else self._make()
        command = ("EVALSHA", script.sha, len(keys), *keys, *arguments)
        try:
            try:
                connection.send_command(*command)
            except redis.ConnectionError:
                connection.disconnect()  # left stale by a Redis restart: one fresh try
                connection.send_command(*command)
        except BaseException:
            self._give_back(connection, broken=True)
            raise
        return connection

    def receive(self, connection, script, keys: list, arguments: list):
        """Read the script's reply; run it again in full if Redis did not run it (a restarted
        Redis has no scripts, or the command went into a connection that had died)."""
        try:
            reply = connection.read_response()
        except (redis.exceptions.NoScriptError, redis.ConnectionError):
            self._give_back(connection, broken=True)
            return script(keys=keys, args=arguments, client=self._client)
        except BaseException:
            self._give_back(connection, broken=True)
            raise
        self._give_back(connection)
        return reply

    def run(self, script, keys: list, arguments: list):
        """Send and wait for the reply."""
        return self.receive(self.send(script, keys, arguments), script, keys, arguments)

    def _give_back(self, connection, broken: bool = False) -> None:
        if broken:
            connection.disconnect()
        self._idle.append(connection)
        self._slots.release()

    def close(self) -> None:
        for connection in self._idle:
            connection.disconnect()
        self._idle = []
