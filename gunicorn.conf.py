"""gunicorn settings for the inference gateway: `gunicorn -c gunicorn.conf.py` (see start.sh).

Every value comes from service/settings.py, which reads the environment and `.env` once; the
hooks live in service/serving/hooks.py and the worker classes in service/serving/workers.py.
"""

import logging

from service.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
except SettingsError as exc:
    raise SystemExit(f"hf-gateway cannot start: {exc}") from None

if _settings.worker_class == "gevent":
    # Before anything else is imported: every lock, thread, socket and SSL context the service
    # and its libraries make must be gevent's. The workers fork from this process.
    from gevent import monkey

    monkey.patch_all()

from service.serving.hooks import child_exit, on_exit, on_starting, post_worker_init, when_ready  # noqa: E402,F401
from service.telemetry.json_logs import gunicorn_logconfig  # noqa: E402  (after the patch, on purpose)

wsgi_app = "service:create_app()"
bind = f"{_settings.host}:{_settings.port}"
pidfile = str(_settings.pidfile) if _settings.pidfile else None

# The work is waiting on the upstream, not computing. gevent (the default) holds every
# request in flight as a greenlet; gthread gives each one a thread. One process per core
# keeps the GIL from being the limit.
worker_class = f"service.serving.workers.{'GeventWorker' if _settings.worker_class == 'gevent' else 'ThreadWorker'}"
workers = _settings.workers
worker_connections = _settings.worker_connections
threads = _settings.threads
# Connections waiting to be accepted: a burst as large as the workers can hold (the kernel caps it).
backlog = max(2048, _settings.workers * _settings.worker_connections)

# A worker must never be killed while a request is still inside its deadline, and a
# graceful stop or reload must let in-flight requests finish.
timeout = int(_settings.longest_deadline + 30)
graceful_timeout = timeout
keepalive = _settings.keepalive  # above nginx's upstream keepalive_timeout

# Recycle workers now and then (staggered), as insurance against slow leaks in libraries.
max_requests = _settings.max_requests
max_requests_jitter = max(1, max_requests // 10)

# The service writes its own line per request (with request id and upstream attempts).
accesslog = _settings.access_log
errorlog = "-"
loglevel = _settings.log_level
if _settings.log_format == "json":
    # gunicorn's own lines (and its access log when ACCESS_LOG is set) as JSON, redacted too.
    logconfig_dict = gunicorn_logconfig(loglevel, accesslog)
    logging.captureWarnings(True)  # library warnings as JSON lines, not plain text between them
forwarded_allow_ips = _settings.forwarded_allow_ips

# Signals (TERM, HUP, TTIN/TTOU) manage the service; a shared control socket in $HOME
# would collide between instances on one host.
control_socket_disable = True
