"""The last step of every service's ``create_app``: the application made by
``shared.service.create_service_app`` gets the service's typed context (which routes read
back through ``shared.context.app_context``) and serves the service's routers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from shared.context import ServiceContext


def with_context(app: FastAPI, ctx: ServiceContext[Any], *routers: APIRouter) -> FastAPI:
    app.state.context = ctx
    for routes in routers:
        app.include_router(routes)
    return app
