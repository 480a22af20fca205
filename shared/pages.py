"""Server-rendered pages of the front doors, one way for every service: Jinja2 templates on
one shared layout (``shared/templates/_page.html.j2``: no scripts, no CDN, labelled
fields, visible focus, AA contrast), Dutch first with English on ``?lang=en``, and the
plain urlencoded form parser the pages post with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

SHARED_TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("nl", "en")


def language_of(request: Request) -> str:
    """Dutch unless the page is asked for in English (``?lang=en``)."""
    asked = request.query_params.get("lang", "nl")
    return asked if asked in LANGUAGES else "nl"


def translator(language: str) -> Callable[[str, str], str]:
    """``t("Dutch", "English")`` in templates and messages."""
    return (lambda nl, en: nl) if language == "nl" else (lambda nl, en: en)


def with_language(url: str, language: str) -> str:
    """``url`` for a page in ``language`` (Dutch is the default, so it needs no parameter)."""
    if language == "nl":
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'lang': language})}"


class Pages:
    """The templates of one service, on the shared layout."""

    def __init__(self, directory: Path) -> None:
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(directory), FileSystemLoader(SHARED_TEMPLATES)]),
            undefined=StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        language = language_of(request)
        other = "en" if language == "nl" else "nl"
        path = request.url.path
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        here = f"{path}?{urlencode(query)}" if query else path
        html = self.env.get_template(template).render(
            language=language,
            t=translator(language),
            url=lambda u: with_language(u, language),
            switch_url=with_language(here, other),
            switch_label="English" if other == "en" else "Nederlands",
            **context,
        )
        return HTMLResponse(html, status_code=status_code, headers={"Content-Language": language})


async def form_fields(request: Request) -> dict[str, list[str]]:
    """A urlencoded form body: every field with all its values (checkboxes repeat)."""
    body = (await request.body()).decode(errors="replace")
    return parse_qs(body, keep_blank_values=True)
