"""The app factory: settings, model catalog, Hub client, blueprints and handlers, wired once."""

import logging
from dataclasses import dataclass

from flask import Flask

from service.api import register_blueprints
from service.auth import require_api_key
from service.catalog import Catalog
from service.error_handlers import register_error_handlers
from service.hub.client import HubClient
from service.hub.providers import check_catalog
from service.inference import InferenceRunner
from service.liveness import LivenessChecker
from service.logs import configure_logging, log_request
from service.redaction import Redactor, secrets_of
from service.request_id import begin_request, send_request_id
from service.schemas import InferRequestSchema
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gateway:
    """The per-app objects every request uses, built once at start-up."""

    settings: Settings
    catalog: Catalog
    client: HubClient
    runner: InferenceRunner
    liveness: LivenessChecker
    redactor: Redactor


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> Flask:
    """Build the Flask app: settings, model catalog, Hub client, blueprints and handlers."""
    settings = settings or Settings.from_env()
    catalog = catalog or Catalog.from_file(settings.models_config)
    check_catalog(catalog)
    redactor = Redactor(secrets_of(settings, catalog))
    configure_logging(redactor, settings.log_level, settings.log_format)
    client = HubClient(settings)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False  # keep Chinese results readable in out.*.json
    app.json.sort_keys = False
    runner = InferenceRunner(client, catalog, settings)
    liveness = LivenessChecker(settings, catalog, client)
    app.extensions["gateway"] = Gateway(settings, catalog, client, runner, liveness, redactor)
    app.extensions["gateway.body_schema"] = InferRequestSchema(settings.max_input_chars)

    app.before_request(begin_request)
    app.before_request(require_api_key)
    app.after_request(send_request_id)
    app.after_request(log_request)
    register_blueprints(app)
    register_error_handlers(app)
    return app
