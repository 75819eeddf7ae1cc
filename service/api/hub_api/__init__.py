"""The Hub's own API (the serverless inference API's paths and shapes), a surface on the pipeline:
its routes, how its parameters map onto the gateway's args, its answers and its error shape."""

from service.api.error_handlers import register_error_shape
from service.api.hub_api.errors import hub_error_shape
from service.api.hub_api.routes import bp

PREFIXES = ("/models/", "/pipeline/")

for _prefix in PREFIXES:
    register_error_shape(_prefix, hub_error_shape)

__all__ = ["PREFIXES", "bp"]
