"""Dutch municipalities as data (``shared/data/municipalities.csv``: CBS code, name,
province), for the front doors' choice lists, the social map's search by place name and
the HSDS ``state_province`` of every address. A municipality is added by adding a line."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "municipalities.csv"


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    province: str


@cache
def municipalities() -> dict[str, Municipality]:
    """By code (``GM0327``), in name order."""
    with DATA.open(encoding="utf-8", newline="") as f:
        rows = sorted((Municipality(**row) for row in csv.DictReader(f)), key=lambda m: m.name.lower())
    return {m.code: m for m in rows}


def find(text: str) -> Municipality | None:
    """A municipality by code or by name, ignoring case and surrounding space."""
    wanted = text.strip().lower()
    return next((m for m in municipalities().values() if wanted in (m.code.lower(), m.name.lower())), None)


def province_of(code: str) -> str | None:
    found = municipalities().get(code.upper())
    return found.province if found else None
