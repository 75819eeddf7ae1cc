"""Run the command line as `python -m service.batch ...` (the same as `hf-infer`)."""

import sys

from service.cli import main

sys.exit(main())
