#!/bin/sh
# Serve the gateway on $PORT (default 8098): creates .venv and installs requirements when needed.
set -eu
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -f "$VENV/.requirements" ] || ! cat requirements.txt pyproject.toml | cmp -s - "$VENV/.requirements"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    # The project itself, for its `hf-infer` command; the pins above stay the source of truth.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
    cat requirements.txt pyproject.toml > "$VENV/.requirements"
fi
# DEMO=1: recorded answers, no token and no network needed (docs: README, "Try it without a token").
case "${DEMO:-}" in
    1) exec "$VENV/bin/python" -m service.demo ;;
    "" | 0) ;;
    *) echo "start.sh: DEMO is 1 (the demo with recorded answers) or unset, not '$DEMO'" >&2; exit 2 ;;
esac
exec "$VENV/bin/gunicorn" -c gunicorn.conf.py
