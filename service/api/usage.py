"""GET /api/usage: the ledger, for keys with `admin = true` (and anyone when no keys are configured).

Requests a crash cut off are booked first (their leases expired, or their worker is seen
gone), so what it reads agrees with the quotas.
"""

import time

from flask import Blueprint, request

from service.api.gateway import gateway
from service.api.lifecycle import current_context
from service.api.schemas import UsageQuerySchema, load_or_raise
from service.errors import Forbidden, StoreUnavailable
from service.store import FAILED
from service.store.contract import UsageQuery
from service.usage.ledger import row_shape, totals_of

bp = Blueprint("usage", __name__)
_QUERY_SCHEMA = UsageQuerySchema()


@bp.get("/api/usage")
def read_usage():
    """Rows of the ledger per day, key and model, and their totals."""
    caller = current_context().client_key
    if caller is None or not caller.admin:
        raise Forbidden("reading usage needs a key with admin = true in the key file")
    query = load_or_raise(_QUERY_SCHEMA, request.args)
    guard = gateway().store
    wanted = UsageQuery(query["since"].isoformat(), query["until"].isoformat(), query.get("key"), query.get("model"))
    guard.sweep_leases(time.time())
    entries = guard.usage_rows(wanted)
    if entries is FAILED:
        raise StoreUnavailable(f"the {guard.kind} store cannot be read now; the ledger is kept, try again shortly")
    rows = [row_shape(entry) for entry in entries]
    return {"since": wanted.since, "until": wanted.until, "rows": rows, "totals": totals_of(rows)}
