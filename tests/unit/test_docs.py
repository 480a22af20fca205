"""The API documentation pages name only assets the service serves itself (shared/docs.py):
every ``src`` and ``href`` of /docs and /asyncapi is a path on the service that
answers, never another host. The browser test (tests/e2e/test_docs_offline.py) shows the
pages render."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from services.municipalities.asyncapi import asyncapi_router
from shared.config import KafkaSettings
from shared.docs import documented_app
from shared.http import is_internal_path

LINKS = re.compile(r'\b(?:src|href)="([^"]+)"')


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = documented_app(title="documented")
    app.include_router(asyncapi_router(KafkaSettings(), "1.0.0"))
    return TestClient(app)


@pytest.mark.parametrize("page", ["/docs", "/asyncapi"])
def test_a_docs_page_loads_every_asset_from_the_service_itself(client: TestClient, page: str) -> None:
    html = client.get(page).text
    assets = LINKS.findall(html)
    assert assets, "the page names its script and style"
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), f"{page} loads {asset} from elsewhere"
        assert client.get(asset).status_code == 200, asset
        # Served on the internal listener only, with the pages themselves.
        assert is_internal_path(asset), asset
    assert "://" not in "".join(re.findall(r"<(?:script|link)\b[^>]*>", html)), f"{page} names another host"
