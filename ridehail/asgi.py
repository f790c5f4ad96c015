"""The ASGI entry point uvicorn imports in each worker: settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from ridehail.app import create_app
from ridehail.observability import configure_logging
from ridehail.settings import Settings


def app_from_env() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
