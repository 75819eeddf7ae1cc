"""gunicorn's server hooks: check the configuration before serving and before every reload,
share metrics between workers, and give the workers the open files they need."""

import gc
import logging
import resource
import shutil

from service.serving.configuration import Configuration, accept, accepted, read_configuration
from service.settings import SettingsError
from service.telemetry import metrics_sharing

log = logging.getLogger("gunicorn.error")


class ConfigurationError(Exception):
    """The settings or the model configuration cannot serve: the message says why, on one line."""


def check_configuration() -> Configuration:
    """Read the configuration from disk and build the app from it once, as a worker will; raise
    ConfigurationError if either fails."""
    from service import create_app  # the whole service: imported only once gevent has patched

    try:
        configuration = read_configuration()
        create_app(configuration.settings, configuration.catalog, configuration.keyring)
    except Exception as exc:  # anything that would stop a worker from booting
        raise ConfigurationError(f"{type(exc).__name__}: {exc}") from None
    return configuration


def on_starting(server) -> None:
    """Refuse to start on a broken configuration; accept it for the workers; prepare the metrics
    directory and open files."""
    try:
        configuration = check_configuration()
        raise_open_files_limit(configuration.settings.open_files_needed)
    except (ConfigurationError, SettingsError) as exc:
        raise SystemExit(f"hf-gateway cannot start: {exc}") from None
    accept(configuration)
    directory, created = metrics_sharing.prepare_multiprocess_directory()
    # On the arbiter, not in a module: a reload (HUP) runs gunicorn.conf.py again.
    server.gateway_metrics_dir_created = directory if created else None
    server.log.info("metrics directory %s", directory)
    server.reload = reload_only_when_valid(server, server.reload)


def reload_only_when_valid(server, reload):
    """Wrap the arbiter's reload: a broken new configuration is logged and the running workers kept,
    and so is the configuration any worker started later boots from."""

    def guarded_reload():
        try:
            configuration = check_configuration()
        except ConfigurationError as exc:
            server.log.error(
                "reload refused, the running workers keep serving and new workers boot from the "
                "configuration accepted before: %s",
                exc,
            )
            return
        accept(configuration)
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
    settings = accepted().settings
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
    """Say when the files on disk no longer load (the worker booted from the accepted ones), then
    keep everything built at start-up out of the garbage collector's way.

    The app, its libraries and its configuration live as long as the worker: frozen, a full
    collection no longer walks them, which shortens the pauses a collection puts on every
    request of the worker (gevent runs them all in one thread).
    """
    from service.api.gateway import gateway_of  # the app is loaded by now, gevent patched first

    gateway_of(worker.wsgi).files_on_disk.problem()
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
