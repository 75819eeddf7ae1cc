"""Run the batch command as `python -m service.batch ...`."""

import sys

from service.batch.cli import main

sys.exit(main())
