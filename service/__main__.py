"""`python -m service ...`: the same command line as `hf-infer`."""

import sys

from service.cli import main

sys.exit(main())
