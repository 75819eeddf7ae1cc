"""The app factory: settings, model catalog, Hub client, blueprints and handlers, wired once."""

import logging
import socket

from flask import Flask

from service.api import register_blueprints
from service.api.error_handlers import register_error_handlers
from service.api.gateway import Gateway, install
from service.api.lifecycle import register_lifecycle
from service.api.schemas import InferRequestSchema
from service.catalog import Catalog
from service.clock import SYSTEM_CLOCK, Clock
from service.hub.client import HubClient
from service.hub.providers import Providers
from service.keys.admission import Admission
from service.keys.keyring import KeyRing
from service.pipeline.breakers import Breakers
from service.pipeline.cache import ResponseCache
from service.pipeline.entry import Pipeline
from service.pipeline.inference import InferenceRunner
from service.pipeline.liveness import LivenessChecker
from service.serving.configuration import FilesOnDisk, inherited
from service.settings import Settings, SettingsError
from service.store import open_store
from service.store.contract import BreakerPolicy, CacheLimits
from service.telemetry.logs import configure_logging
from service.telemetry.redaction import Redactor, secrets_of

log = logging.getLogger(__name__)


def cache_limits(settings: Settings) -> CacheLimits:
    return CacheLimits(settings.cache_ttl, settings.cache_max_entries, settings.cache_max_bytes)


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(settings.breaker_failures, settings.breaker_open_seconds, settings.breaker_window_seconds)


def create_app(
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    keyring: KeyRing | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    resolver=socket.getaddrinfo,
) -> Flask:
    """Build the Flask app: settings, model catalog, Hub client, blueprints and handlers. Called with
    nothing in a gunicorn worker, it is built from the configuration the master accepted last. Every
    part reads the time and waits on `clock`; downloads look host names up with `resolver`."""
    configuration = inherited() if settings is None and catalog is None else None
    if configuration is not None:
        settings, catalog, keyring = configuration.settings, configuration.catalog, configuration.keyring
    settings = settings or Settings.from_env()
    catalog = catalog or Catalog.from_file(settings.models_config)
    providers = Providers.from_settings(settings)
    providers.check(catalog)
    redactor = Redactor(secrets_of(settings, catalog))
    keyring = KeyRing.from_settings(settings) if keyring is None else keyring
    # The master refuses to start on a store that can never work; a worker it forks later boots
    # whatever became of the store since, and fails open.
    store = open_store(settings, refuse_unusable=configuration is None, clock=clock)
    if not store.enabled and any(key.limits.any() for key in keyring.keys):
        raise SettingsError("STORE=off, but the key file sets limits: limits need a store (sqlite or redis)")
    configure_logging(redactor, settings.log_level, settings.log_format)
    client = HubClient(settings, clock, resolver)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False  # keep Chinese results readable in out.*.json
    app.json.sort_keys = False
    cache = ResponseCache(store, cache_limits(settings), settings.cache_max_entry_bytes, clock)
    breakers = Breakers(store, breaker_policy(settings), catalog, clock)
    runner = InferenceRunner(
        client, catalog, settings, cache, breakers, providers, configured_keys=len(keyring.keys), clock=clock
    )
    admission = Admission(store, clock)
    gateway = Gateway(
        settings=settings,
        catalog=catalog,
        client=client,
        pipeline=Pipeline(catalog, settings, admission, runner, clock),
        liveness=LivenessChecker(settings, catalog, client, clock),
        redactor=redactor,
        keyring=keyring,
        store=store,
        admission=admission,
        breakers=breakers,
        files_on_disk=FilesOnDisk(settings),
        body_schema=InferRequestSchema(settings.max_input_chars),
    )
    install(app, gateway)
    register_lifecycle(app)
    register_blueprints(app)
    register_error_handlers(app)
    return app
