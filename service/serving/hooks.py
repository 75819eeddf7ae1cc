"""gunicorn's server hooks: check the configuration before serving and before every reload,
share metrics between workers, and give the workers the open files they need."""

import gc
import logging
import resource
import shutil

from service import metrics_sharing
from service.settings import Settings, SettingsError

log = logging.getLogger("gunicorn.error")


class ConfigurationError(Exception):
    """The settings or the model configuration cannot serve: the message says why, on one line."""


def check_configuration() -> Settings:
    """Build the app once, as a worker will, and return its settings; raise ConfigurationError if it fails."""
    from service import create_app  # the whole service: imported only once gevent has patched

    try:
        app = create_app()
    except Exception as exc:  # anything that would stop a worker from booting
        raise ConfigurationError(f"{type(exc).__name__}: {exc}") from None
    return app.extensions["gateway"].settings


def on_starting(server) -> None:
    """Refuse to start on a broken configuration; prepare the metrics directory and open files."""
    try:
        settings = check_configuration()
        raise_open_files_limit(settings.open_files_needed)
    except (ConfigurationError, SettingsError) as exc:
        raise SystemExit(f"hf-gateway cannot start: {exc}") from None
    directory, created = metrics_sharing.prepare_multiprocess_directory()
    # On the arbiter, not in a module: a reload (HUP) runs gunicorn.conf.py again.
    server.gateway_metrics_dir_created = directory if created else None
    server.log.info("metrics directory %s", directory)
    server.reload = reload_only_when_valid(server, server.reload)


def reload_only_when_valid(server, reload):
    """Wrap the arbiter's reload: a broken new configuration is logged and the running workers kept."""

    def guarded_reload():
        try:
            check_configuration()
        except ConfigurationError as exc:
            server.log.error("reload refused, the running workers keep serving: %s", exc)
            return
        reload()

    return guarded_reload


def raise_open_files_limit(needed: int) -> None:
    """Let every worker hold its connections: raise the soft limit on open files up to what it needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SettingsError(
            f"a worker may need {needed} open files (WORKER_CONNECTIONS + UPSTREAM_POOL_SIZE + 256) but the "
            f"system allows {hard} (ulimit -Hn): lower those settings or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def when_ready(server) -> None:
    """Say the service is ready, and warn once when no token is configured."""
    settings = Settings.from_env()
    if not settings.hf_api_token:
        server.log.warning(
            "HF_API_TOKEN is not set: the service starts, but calls to the Hugging Face routes answer "
            "upstream_auth until you put HF_API_TOKEN=<token> in .env and restart"
        )
    shape = (
        f"{settings.workers} workers x {settings.worker_connections} connections (gevent)"
        if settings.worker_class == "gevent"
        else f"{settings.workers} workers x {settings.threads} threads (gthread)"
    )
    log.info("gateway ready: %s, timeout %ds", shape, server.cfg.timeout)


def post_worker_init(worker) -> None:
    """Keep everything built at start-up out of the garbage collector's way.

    The app, its libraries and its configuration live as long as the worker: frozen, a full
    collection no longer walks them, which shortens the pauses a collection puts on every
    request of the worker (gevent runs them all in one thread).
    """
    gc.collect()
    gc.freeze()


def child_exit(server, worker) -> None:
    """Forget a dead worker's in-flight requests; what it counted stays in the totals."""
    metrics_sharing.mark_worker_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics directory made at start (an operator's own directory stays)."""
    directory = getattr(server, "gateway_metrics_dir_created", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
