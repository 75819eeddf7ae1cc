"""What the property tests and their fixtures share: the mocked upstream's host, the client key,
the hypothesis settings, and the counts reported at the end of the session.

The run is bounded for CI (FUZZ_EXAMPLES examples per property, 200 by default, derandomized);
set FUZZ_EXAMPLES=20000 for a long, randomized run.
"""

import os
from collections import Counter

from hypothesis import HealthCheck, settings

UPSTREAM_HOST = "hub.test"
API_KEY = "fuzz-client-key-0123456789"
_LONG_RUN = "FUZZ_EXAMPLES" in os.environ

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 200)),
    deadline=None,
    derandomize=not _LONG_RUN,  # the CI run sees the same cases every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Examples run per property, and the statuses they got, reported at the end of the session.
CASES = Counter()
STATUSES = Counter()
