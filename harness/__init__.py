"""The real servers the tests and the benchmark start: gunicorn, the loopback upstream, redis,
nginx, and the recordings they replay (kept in tests/recordings/, read by path).

Nothing here is shipped with the service, and importing it never imports `tests`.
"""
