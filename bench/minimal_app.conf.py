"""gunicorn settings of bench/minimal_app.py: the gateway's worker class and worker count, no more."""

import os

from gevent import monkey

monkey.patch_all()

from service.settings import Settings  # noqa: E402  (after the patch, as gunicorn.conf.py does)

_settings = Settings.from_env()
bind = f"{os.environ['HOST']}:{os.environ['PORT']}"
worker_class = "gevent"
workers = _settings.workers
worker_connections = _settings.worker_connections
keepalive = _settings.keepalive
accesslog = None
errorlog = "-"
control_socket_disable = True
