"""The objects every request uses, built once by `create_app`, and the one typed way a view
reaches them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from service.api.schemas import InferRequestSchema
from service.catalog import Catalog
from service.hub.client import HubClient
from service.keys.admission import Admission
from service.keys.keyring import KeyRing
from service.pipeline.breakers import Breakers
from service.pipeline.entry import Pipeline
from service.pipeline.liveness import LivenessChecker
from service.serving.configuration import FilesOnDisk
from service.settings import Settings
from service.store import NullStore, StoreGuard
from service.telemetry.redaction import Redactor

_EXTENSION = "gateway"


@dataclass(frozen=True)
class Gateway:
    """The per-app objects every request uses, built once at start-up."""

    settings: Settings
    catalog: Catalog
    client: HubClient
    pipeline: Pipeline
    liveness: LivenessChecker
    redactor: Redactor
    keyring: KeyRing
    store: StoreGuard | NullStore
    admission: Admission
    breakers: Breakers
    files_on_disk: FilesOnDisk
    body_schema: InferRequestSchema

    @property
    def runner(self):
        """The pipeline's runner of routes (tests reach its cache and breakers through it)."""
        return self.pipeline.runner


def install(app: Flask, gateway: Gateway) -> None:
    """Attach the gateway's objects to the app."""
    app.extensions[_EXTENSION] = gateway


def gateway_of(app: Flask) -> Gateway:
    """Return the objects of `app` (the serving hooks and tests hold an app, not a request)."""
    return app.extensions[_EXTENSION]


def gateway() -> Gateway:
    """Return the objects of the app serving the current request."""
    return current_app.extensions[_EXTENSION]
