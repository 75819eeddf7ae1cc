"""`hf-infer models`: the configured routes and whether the Hub says each target is served."""

import sys

from service.catalog import Catalog
from service.cli.text_table import text_table
from service.hub.client import HubClient
from service.pipeline.liveness import LivenessChecker
from service.settings import Settings


def print_models_table(out=None) -> None:
    """Print one row per target: route, order, model, protocol, provider, status."""
    out = out or sys.stdout
    settings = Settings.from_env()
    catalog = Catalog.from_file(settings.models_config)
    report = LivenessChecker(settings, catalog, HubClient(settings)).report()
    rows = [("ROUTE", "#", "MODEL", "PROTOCOL", "PROVIDER", "STATUS")]
    for route in report:
        for order, target in enumerate(route["targets"], start=1):
            rows.append(
                (route["route"], str(order), target["model"], target["protocol"], target["provider"], target["status"])
            )
    out.write(text_table(rows))
