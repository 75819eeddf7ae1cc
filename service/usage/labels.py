"""The model a ledger row is booked under, from a bounded set of names.

A caller can name any Hub id in `model_name`, and the ledger keeps one row per day, key and
model: one key could add rows without end. So a row names a model the catalog configures
(a chain's target or a `[models]` entry, by its Hub id); any other model is booked under
`other`, and `-` is a request that failed before a model was chosen. What one key adds to a
day is then at most the catalog's models and those two.
"""

from __future__ import annotations

import weakref

NO_MODEL = "-"
OTHER_MODELS = "other"

_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def catalog_models(catalog) -> frozenset:
    """The Hub ids the catalog names, worked out once per catalog."""
    known = _known.get(catalog)
    if known is None:
        targets = [target for _, chain in catalog.all_routes() for target in chain]
        known = _known[catalog] = frozenset(
            [target.id for target in targets] + [model.id for model in catalog.models.values()]
        )
    return known


def model_label(model: str | None, catalog) -> str:
    """The name the ledger books a request's model under, among those `catalog` names."""
    if not model or model == NO_MODEL:
        return NO_MODEL
    return model if model in catalog_models(catalog) else OTHER_MODELS
