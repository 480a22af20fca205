"""The Dutch municipalities that exist: CBS codes (``GM`` + four digits) and names.

``gemeenten.csv`` is the CBS municipal division ("gemeentelijke indeling") in force since
1 January 2023 — 342 municipalities, unchanged on 1 January 2024, 2025 and 2026. The codes
and names are CBS's (Statistics Netherlands, "Gebieden in Nederland" / "Gemeentelijke
indeling op 1 januari"); this copy was taken from the open-source COVID-19 dashboard of the
Dutch Ministry of Health (github.com/minvws/nl-covid19-data-dashboard,
packages/common/src/data/gm.ts, as updated for the 1 January 2023 reorganisation). When CBS
publishes a new division (mergers take effect on 1 January), replace the file.

A code outside this list is refused wherever one comes in (422), so nobody can make the
system create a topic, a credential or a stream for a municipality that does not exist."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "gemeenten.csv"


@cache
def municipalities() -> dict[str, str]:
    """Code -> name of every existing Dutch municipality."""
    with DATA.open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def exists(code: str) -> bool:
    return code in municipalities()


def check_code(code: str) -> str:
    """``code`` when it is an existing municipality's; a ValueError naming the list otherwise
    (pydantic turns it into a 422 naming the field)."""
    if not exists(code):
        raise ValueError(f"{code!r} is not the CBS code of an existing Dutch municipality (GM + 4 digits)")
    return code
