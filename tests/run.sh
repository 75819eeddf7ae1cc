#!/bin/sh
# Run the whole test suite from a fresh clone: virtualenv, packages, tools, then pytest.
set -eu
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

# The tests need some Debian packages (below); a missing one is installed with apt-get, which
# needs root, and said first, so that nothing is installed on the machine without a word.
apt_install() {
    echo "tests/run.sh: installing the Debian packages $* with apt-get (the tests need them)" >&2
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ ! -f "$VENV/.test-requirements" ] || ! cat requirements.txt tests/requirements.txt pyproject.toml | cmp -s - "$VENV/.test-requirements"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
    cat requirements.txt tests/requirements.txt pyproject.toml > "$VENV/.test-requirements"
fi
if ! command -v curl >/dev/null 2>&1; then
    apt_install curl
fi
# The nginx tests run Debian's nginx in front of gunicorn (it lives in sbin, often off PATH).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    apt_install nginx
fi
# The shared-store tests run Debian's redis-server on a free port (it lives in /usr/bin).
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    apt_install redis-server
fi
# The try-it page is tested in Debian's headless Chromium, driven through its own chromedriver;
# the CJK fonts let its screenshots show Chinese.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 || [ ! -d /usr/share/fonts/opentype/noto ]; then
    apt_install chromium chromium-driver fonts-noto-cjk
fi
# huggingface.js (@huggingface/inference) runs unchanged under Debian's nodejs, installed from
# tests/clients/package-lock.json, and again whenever the lock file is newer than the install.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
CLIENTS_INSTALLED=tests/clients/node_modules/.package-lock.json
if [ ! -f "$CLIENTS_INSTALLED" ] || [ tests/clients/package-lock.json -nt "$CLIENTS_INSTALLED" ]; then
    npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
fi
if ! command -v wrk >/dev/null 2>&1; then  # the load generator of the benchmark smoke run
    apt_install wrk
fi
# One style for the whole tree (pyproject.toml): lint and formatting fail the run first.
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/ruff" format --check --quiet .
exec "$VENV/bin/python" -m pytest -c tests/pytest.ini --rootdir=. "$@"
