"""The public social map (``/sociale-kaart``): everyone searches the local support by
municipality or postcode and by need or category, without an account; Dutch first, English
on ``?lang=en``; a plain GET form, so it works without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.matching import search, service
from services.matching.dependencies import Context, MatchingContext
from services.matching.pc4 import PC4_CENTROIDS, pc4_of
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


@dataclass(frozen=True)
class MapSearch:
    """A search of the social map: what was asked, and what was found."""

    place: str
    query: str
    municipality: Municipality | None = None
    pc4: str | None = None
    cards: list[search.Card] = field(default_factory=list)

    @property
    def status(self) -> int:
        """404 for a place we do not know."""
        return 404 if self.place and self.municipality is None else 200


async def _search(ctx: MatchingContext, place: str, query: str) -> MapSearch:
    municipality, pc4 = _place(place) if place else (None, None)
    if municipality is None:
        return MapSearch(place, query, None, pc4)
    async with MatchingUnitOfWork.begin(ctx.pool) as uow:
        cards = await service.find_support(uow, municipality.code, pc4, query)
    return MapSearch(place, query, municipality, pc4, cards)


@router.get("/sociale-kaart", response_class=HTMLResponse)
async def social_map(request: Request, ctx: Context, plaats: str = "", zoek: str = "") -> HTMLResponse:
    found = await _search(ctx, plaats.strip()[:100], zoek.strip()[:100])
    return pages.render(
        request,
        "social_map.html.j2",
        found.status,
        place=found.place,
        query=found.query,
        municipality=found.municipality,
        pc4=found.pc4,
        cards=found.cards,
        searched=bool(found.place),
        terms=TERMS.values(),
        municipalities=list(municipalities().values()),
        day_names=search.day_names,
    )
