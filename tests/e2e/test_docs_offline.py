"""The API documentation pages render in a real browser with no internet: Swagger UI at
``/docs`` and the AsyncAPI page at ``/asyncapi`` load every script and style from the
service itself. This machine has no internet access, so a page that still pointed at a CDN
would stay blank here and these tests would fail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from deploy.stack import Stack

# Well under the page's default: an offline page renders in seconds or not at all.
RENDERED = 30_000


def record_hosts(page: Any) -> set[str]:
    """Every host the page sends a request to (documents, scripts, styles, fonts, images);
    data: and blob: URLs are made inside the page and reach no host."""
    hosts: set[str] = set()

    def seen(request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob"):
            hosts.add(url.netloc)

    page.on("request", seen)
    return hosts


async def test_swagger_ui_shows_the_operations_of_signals_without_internet(page: Any, stack: Stack) -> None:
    signals = stack.services["signals"].url
    hosts = record_hosts(page)
    await page.goto(f"{signals}/docs")
    post = page.locator(".opblock-post", has_text="/v1/signals").first
    await post.wait_for(timeout=RENDERED)
    assert "Post a signal about a caregiver who may be overburdened" in await post.inner_text()
    assert hosts == {urlsplit(signals).netloc}


async def test_the_asyncapi_page_shows_the_municipality_channel_without_internet(page: Any, stack: Stack) -> None:
    municipalities = stack.services["municipalities"].url
    hosts = record_hosts(page)
    await page.goto(f"{municipalities}/asyncapi")
    # The send operation on the channel and its message, as the AsyncAPI component renders
    # them in the page's body (the sidebar's copies are hidden at this width).
    for text in ("SEND", "municipality.{municipality_code}.events.v1", "municipality-events:Message"):
        shown = page.locator("#asyncapi").get_by_text(text, exact=True).filter(visible=True).first
        await shown.wait_for(timeout=RENDERED)
    assert hosts == {urlsplit(municipalities).netloc}
