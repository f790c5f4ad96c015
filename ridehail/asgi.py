"""The ASGI entry point uvicorn imports in each worker: settings from the environment."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from ridehail.app import create_app
from ridehail.observability import configure_logging
from ridehail.settings import Settings


def app_from_env() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    # What is loaded by now (modules, schemas, the app) lives as long as the process: keep it
    # out of the cyclic garbage collector's full passes, which otherwise stall the event loop
    # for 55-68 ms each under load (measured: docs/benchmarks.md, trip request to offer).
    gc.freeze()
    return app
