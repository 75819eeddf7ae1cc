#!/bin/sh
# Serve the gateway on $PORT (default 8098): creates .venv and installs requirements when needed.
set -eu
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -f "$VENV/.requirements" ] || ! cmp -s requirements.txt "$VENV/.requirements"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt "$VENV/.requirements"
fi
exec "$VENV/bin/gunicorn" -c gunicorn.conf.py
