"""Operator commands: `python -m service models` prints the configured routes and their live
status; `python -m service settings --env|--markdown` writes out every setting."""

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


USAGE = "usage: python -m service models | python -m service settings --env|--markdown\n"


def main(argv=None) -> int:
    """Dispatch the operator sub-command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["models"]:
        print_models_table()
        return 0
    if argv in (["settings", "--env"], ["settings", "--markdown"]):
        from service.cli import settings_docs

        sys.stdout.write(settings_docs.env_example() if argv[1] == "--env" else settings_docs.markdown_table() + "\n")
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
