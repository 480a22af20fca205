"""The API documentation pages, with every script and style served by the service itself:
Swagger UI (``/docs``) from the fastapi-offline package, the AsyncAPI page (``/asyncapi``)
from ``@asyncapi/react-component``, vendored in ``static/asyncapi/`` (see its SOURCE: no PyPI
package ships it). Pages that load their assets from a CDN render blank on a network without
internet access, as many municipal networks are.

The assets live under ``/docs/…`` and ``/asyncapi/…``, so the split between the public and
the internal listener (``shared/http.py``) keeps them on the internal one with the pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from faststream.specification import Specification, get_asyncapi_html

DOCS_ASSETS = "/docs/assets"
ASYNCAPI_ASSETS = "/asyncapi/assets"
ASYNCAPI_VENDORED = Path(__file__).parent / "static" / "asyncapi"

# FastStream's page links its favicons on asyncapi.com; the browser would ask for them.
_REMOTE_ICON = re.compile(r'\s*<link rel="icon"[^>]*href="https?://[^>]*>')


def documented_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs loads Swagger UI from ``DOCS_ASSETS``."""
    # No ReDoc: its sidebar always loads Redocly's logo from their CDN, and Swagger UI shows
    # the same document. No validatorUrl: Swagger UI would fetch a badge from swagger.io.
    return FastAPIOffline(
        redoc_url=None, static_url=DOCS_ASSETS, swagger_ui_parameters={"validatorUrl": None}, **kwargs
    )


def asyncapi_page(spec: Specification) -> str:
    """The AsyncAPI page of ``spec``, rendered in the browser from the vendored component."""
    html = get_asyncapi_html(
        spec,
        asyncapi_js_url=f"{ASYNCAPI_ASSETS}/index.js",
        asyncapi_css_url=f"{ASYNCAPI_ASSETS}/default.min.css",
        # The "try it out" plugin (another CDN script) posts to an endpoint no service has.
        try_it_out_path=None,
    )
    return _REMOTE_ICON.sub("", html)


def asyncapi_router(spec: Specification, *, tag: str) -> APIRouter:
    """``/asyncapi.json``, ``/asyncapi`` and the page's assets, for a service that publishes
    an AsyncAPI document."""
    document, html = spec.to_json(), asyncapi_page(spec)
    router = APIRouter(tags=[tag])
    router.mount(ASYNCAPI_ASSETS, StaticFiles(directory=ASYNCAPI_VENDORED), name="asyncapi-assets")

    @router.get("/asyncapi.json", summary="AsyncAPI document of the service's stream")
    async def asyncapi_json() -> Response:
        return Response(document, media_type="application/json")

    @router.get("/asyncapi", summary="The AsyncAPI document, rendered", response_class=HTMLResponse)
    async def asyncapi_html() -> HTMLResponse:
        return HTMLResponse(html)

    return router
