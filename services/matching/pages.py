"""The public social map (``/sociale-kaart``): everyone searches the local support by
municipality or postcode and by need or category, without an account; Dutch first, English
on ``?lang=en``; a plain GET form, so it works without JavaScript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.matching import search, service
from services.matching.dependencies import Context, MatchingContext
from services.matching.pc4 import PC4_CENTROIDS, pc4_of
from services.matching.search import Card
from services.matching.service import MatchingUnitOfWork
from services.matching.taxonomy import TERMS
from shared.municipalities import Municipality, find, municipalities
from shared.pages import Pages

router = APIRouter(include_in_schema=False)
pages = Pages(Path(__file__).parent / "templates")


def _place(text: str) -> tuple[Municipality | None, str | None]:
    """A municipality by name or code, or by a postcode in it (then also its PC4 area)."""
    pc4 = pc4_of(text)
    if pc4 and pc4 in PC4_CENTROIDS:
        return municipalities().get(PC4_CENTROIDS[pc4][0]), pc4
    return find(text), None


async def _search(ctx: MatchingContext, place: str, query: str) -> tuple[Municipality | None, str | None, list[Card]]:
    """The municipality (and PC4 area) of ``place``, and its services that match ``query``."""
    municipality, pc4 = _place(place) if place else (None, None)
    if municipality is None:
        return None, pc4, []
    async with MatchingUnitOfWork.begin(ctx.pool) as uow:
        return municipality, pc4, await service.find_support(uow, municipality.code, pc4, query)


@router.get("/sociale-kaart", response_class=HTMLResponse)
async def social_map(request: Request, ctx: Context, plaats: str = "", zoek: str = "") -> HTMLResponse:
    place, query = plaats.strip()[:100], zoek.strip()[:100]
    municipality, pc4, cards = await _search(ctx, place, query)
    return pages.render(
        request,
        "social_map.html.j2",
        404 if place and municipality is None else 200,
        place=place,
        query=query,
        municipality=municipality,
        pc4=pc4,
        cards=cards,
        searched=bool(place),
        **_choices(),
    )


def _choices() -> dict[str, Any]:
    """What the search form offers, and how a card names its days."""
    return {"terms": TERMS.values(), "municipalities": list(municipalities().values()), "day_names": search.day_names}
