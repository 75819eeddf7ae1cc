"""gunicorn settings for the inference gateway (`gunicorn -c gunicorn.conf.py 'service:create_app()'`)."""

import logging
import os
import shutil

from service import metrics as gateway_metrics
from service.json_logs import gunicorn_logconfig, log_format_from_env
from service.settings import Settings

_settings = Settings.from_env()
_cores = os.cpu_count() or 1

wsgi_app = "service:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8098')}"

# The work is waiting on the upstream, not computing: threads carry the concurrency,
# one process per core keeps the GIL from being the limit. Connections are not spread
# evenly over the workers, so each worker gets enough threads for 64 requests in flight
# on its own (the CPU, about 1.5 ms per request, runs out before the threads do).
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", _cores))
threads = int(os.environ.get("GUNICORN_THREADS", 64))

# A worker must never be killed while a request is still inside its deadline, and a
# graceful stop or reload must let in-flight requests finish.
timeout = int(_settings.longest_deadline + 30)
graceful_timeout = timeout
keepalive = int(os.environ.get("KEEPALIVE_SECONDS", 75))  # above nginx's upstream keepalive_timeout

# Recycle workers now and then (staggered), as insurance against slow leaks in libraries.
max_requests = int(os.environ.get("MAX_REQUESTS", 20000))
max_requests_jitter = max(1, max_requests // 10)

# The service writes its own line per request (with request id and upstream attempts).
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if log_format_from_env(os.environ) == "json":
    # gunicorn's own lines (and its access log when ACCESS_LOG is set) as JSON, redacted too.
    logconfig_dict = gunicorn_logconfig(loglevel, accesslog)
    logging.captureWarnings(True)  # library warnings as JSON lines, not plain text between them
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Signals (TERM, HUP, TTIN/TTOU) manage the service; a shared control socket in $HOME
# would collide between instances on one host.
control_socket_disable = True


def when_ready(server):
    """Warn once, in the master, when no token is configured."""
    if not _settings.hf_api_token:
        server.log.warning(
            "HF_API_TOKEN is not set: the service starts, but upstream calls will fail with "
            "upstream_auth until you put HF_API_TOKEN=<token> in .env and restart"
        )
    logging.getLogger("gunicorn.error").info(
        "gateway ready: %d workers x %d threads, timeout %ds", workers, threads, timeout
    )


def on_starting(server):
    """Give the workers one empty directory to share their metrics through."""
    directory, created = gateway_metrics.prepare_multiprocess_directory()
    # On the arbiter, not in this module: a reload (HUP) runs this file again.
    server.gateway_metrics_dir_created = directory if created else None
    server.log.info("metrics directory %s", directory)


def child_exit(server, worker):
    """Forget a dead worker's in-flight requests; what it counted stays in the totals."""
    gateway_metrics.mark_worker_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory made at start (an operator's own directory stays)."""
    directory = getattr(server, "gateway_metrics_dir_created", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
