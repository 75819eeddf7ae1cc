"""Operator commands: `python -m service models` prints the configured routes and their live
status; `python -m service settings --env|--markdown` writes out every setting."""

import sys

from service.cli.models_table import main

sys.exit(main())
