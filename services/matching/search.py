"""The public social map's search, pure: which services answer a search (by the taxonomy's
Dutch labels and synonyms, else by words in name and description), and what a card shows
of each (HSDS ``service_full``: description, addresses, opening hours, contact,
eligibility, languages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.matching.taxonomy import TAXONOMY, TERMS, terms_for

DAYS = {
    "MO": ("ma", "Mon"),
    "TU": ("di", "Tue"),
    "WE": ("wo", "Wed"),
    "TH": ("do", "Thu"),
    "FR": ("vr", "Fri"),
    "SA": ("za", "Sat"),
    "SU": ("zo", "Sun"),
}


@dataclass(frozen=True)
class Card:
    id: str
    name: str
    organization: str
    description: str | None
    categories: list[tuple[str, str]]  # (Dutch, English) labels of its taxonomy terms
    addresses: list[str]
    hours: list[dict[str, str]]
    contacts: list[dict[str, Any]]
    email: str | None
    url: str | None
    eligibility: str | None
    fees: str | None
    application: str | None
    languages: list[str] = field(default_factory=list)


def _codes(record: dict[str, Any]) -> set[str]:
    return {
        a["taxonomy_term"]["code"]
        for a in record.get("attributes") or []
        if (a.get("taxonomy_term") or {}).get("taxonomy") == TAXONOMY and a["taxonomy_term"].get("code")
    }


def _text_match(record: dict[str, Any], query: str) -> bool:
    words = [w for w in query.casefold().split() if len(w) >= 3]
    haystack = f"{record.get('name', '')} {record.get('description') or ''}".casefold()
    return bool(words) and all(w in haystack for w in words)


def answers(record: dict[str, Any], query: str) -> bool:
    """An empty search shows everything; else the taxonomy decides, or the words in the text."""
    if not query.strip():
        return True
    wanted = terms_for(query)
    return bool(wanted & _codes(record)) or _text_match(record, query)


def _address(a: dict[str, Any]) -> str:
    return ", ".join(filter(None, (a.get("address_1"), " ".join(filter(None, (a.get("postal_code"), a.get("city")))))))


def card(record: dict[str, Any]) -> Card:
    organization = record.get("organization") or {}
    addresses = list(
        dict.fromkeys(
            _address(a)
            for sal in record.get("service_at_locations") or []
            for a in (sal.get("location") or {}).get("addresses") or []
            if a.get("address_1")
        )
    )
    hours = [
        {
            "days": s.get("byday") or "",
            "opens": (s.get("opens_at") or "")[:5],
            "closes": (s.get("closes_at") or "")[:5],
            "description": s.get("description") or "",
        }
        for s in record.get("schedules") or []
    ]
    contacts = [
        {
            "name": c.get("name"),
            "title": c.get("title"),
            "email": c.get("email"),
            "phones": [p.get("number") for p in c.get("phones") or [] if p.get("number")],
        }
        for c in record.get("contacts") or []
    ]
    return Card(
        id=record["id"],
        name=record["name"],
        organization=organization.get("name", ""),
        description=record.get("description"),
        categories=[(TERMS[c].name_nl, TERMS[c].name_en) for c in sorted(_codes(record)) if c in TERMS],
        addresses=addresses,
        hours=hours,
        contacts=contacts,
        email=record.get("email") or organization.get("email"),
        url=record.get("url") or organization.get("website"),
        eligibility=record.get("eligibility_description"),
        fees=record.get("fees_description"),
        application=record.get("application_process"),
        languages=[lang.get("name") or lang.get("code") for lang in record.get("languages") or []],
    )


def search(records: list[dict[str, Any]], query: str) -> list[Card]:
    return [card(r) for r in records if answers(r, query)]


def day_names(byday: str, language: str) -> str:
    return ", ".join(DAYS.get(d.strip(), (d, d))[0 if language == "nl" else 1] for d in byday.split(",") if d.strip())
