"""The gateway's benchmark: what the service adds to the upstream's own time and memory.

Run it with `python -m bench` (see `python -m bench --help`); it never asserts a time.
"""
