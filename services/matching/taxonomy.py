"""The project's taxonomy of caregiver-support terms, attached to HSDS services as attributes.

HSDS says little about who a service is for (free text plus ages), so the social map tags
each service with terms from this taxonomy: what kind of support it is (which ``Need`` it
answers) and, for target-group terms, whom it is meant for. A service carrying a target-group
term is only for caregivers in that group."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts import Need

TAXONOMY = "signal-to-support/caregiver-support"
# Term ids are derived from the code, so every social map and every database agrees on them.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://signal-to-support.example.nl/taxonomy")


@dataclass(frozen=True)
class Term:
    code: str
    name_nl: str
    name_en: str
    needs: frozenset[Need]
    target_group: bool = False

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.code))


def _term(code: str, nl: str, en: str, *needs: Need, target_group: bool = False) -> Term:
    return Term(code, nl, en, frozenset(needs), target_group)


TERMS: dict[str, Term] = {
    t.code: t
    for t in (
        _term("respite_care", "Respijtzorg", "Respite care", Need.RESPITE_CARE),
        _term(
            "caregiver_cafe",
            "Mantelzorgcafé",
            "Caregiver café",
            Need.PEER_CONTACT,
            Need.EMOTIONAL_SUPPORT,
            Need.INFORMATION_ADVICE,
        ),
        _term("peer_contact", "Lotgenotencontact", "Peer contact", Need.PEER_CONTACT, Need.EMOTIONAL_SUPPORT),
        _term("household_help", "Huishoudelijke hulp", "Household help", Need.PRACTICAL_HELP),
        _term(
            "caregiver_consultant",
            "Mantelzorgconsulent",
            "Caregiver consultant",
            Need.INFORMATION_ADVICE,
            Need.EMOTIONAL_SUPPORT,
            Need.CASE_MANAGEMENT,
        ),
        # A volunteer at home both helps in practice and lets the caregiver take a break.
        _term("volunteer_help", "Vrijwillige hulp", "Volunteer help", Need.PRACTICAL_HELP, Need.RESPITE_CARE),
        _term("training", "Training en cursus", "Training and courses", Need.INFORMATION_ADVICE),
        _term(
            "financial_administrative",
            "Financiële en administratieve hulp",
            "Financial and administrative help",
            Need.FINANCIAL_ADMINISTRATIVE,
        ),
        _term("young_carers", "Jonge mantelzorgers", "Young carers", Need.YOUNG_CARER_SUPPORT, target_group=True),
        _term("working_carers", "Werkende mantelzorgers", "Working carers", Need.WORK_CARE_BALANCE, target_group=True),
        # Dementia describes the person cared for, not a kind of help: it covers no need.
        _term("dementia", "Dementie", "Dementia", target_group=True),
    )
}

TARGET_GROUPS = frozenset(code for code, term in TERMS.items() if term.target_group)


def needs_covered(codes: Iterable[str]) -> frozenset[Need]:
    """The needs answered by a service tagged with these codes (unknown codes cover nothing)."""
    return frozenset(need for code in codes if code in TERMS for need in TERMS[code].needs)


# Words people type when they look for a kind of support, in Dutch first, beside each
# term's own names: a search for "respijt" or "logeren" finds respite care.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "respite_care": (
        "respijt",
        "respijtzorg",
        "logeeropvang",
        "logeren",
        "dagopvang",
        "dagbesteding",
        "vervangende zorg",
        "even vrij",
        "ontlasten",
        "respite",
    ),
    "caregiver_cafe": ("mantelzorgcafé", "mantelzorgcafe", "alzheimer café", "ontmoeting", "café", "cafe"),
    "peer_contact": ("lotgenoten", "lotgenotencontact", "maatje", "praatgroep", "koffieochtend", "peer"),
    "household_help": ("huishouden", "huishoudelijke hulp", "schoonmaak", "schoonmaken", "boodschappen"),
    "caregiver_consultant": (
        "mantelzorgconsulent",
        "consulent",
        "advies",
        "informatie",
        "steunpunt",
        "mantelzorgondersteuning",
        "consultant",
    ),
    "volunteer_help": ("vrijwilliger", "vrijwillige hulp", "klussen", "klussendienst", "thuisondersteuning"),
    "training": ("cursus", "training", "workshop"),
    "financial_administrative": (
        "administratie",
        "formulieren",
        "geldzaken",
        "financiën",
        "financieel",
        "schulden",
        "toeslagen",
    ),
    "young_carers": ("jonge mantelzorger", "jonge mantelzorgers", "jmz", "kinderen", "jongeren"),
    "working_carers": ("werkende mantelzorger", "werk", "werkgever", "werkende"),
    "dementia": ("dementie", "alzheimer", "geheugen"),
}


def terms_for(query: str) -> frozenset[str]:
    """The taxonomy codes a search asks for: terms whose name, synonym or code begins with
    the whole query ("huishoudelijke hulp"), else with one of its words ("respijt" finds
    respite care, "huishoud" household help)."""
    phrase = " ".join(query.casefold().replace(",", " ").split())
    if len(phrase) < 3:
        return frozenset()
    names = {
        code: {code, term.name_nl.casefold(), term.name_en.casefold(), *SYNONYMS.get(code, ())}
        for code, term in TERMS.items()
    }
    whole = {code for code, labels in names.items() if any(label.startswith(phrase) for label in labels)}
    if whole:
        return frozenset(whole)
    words = [w for w in phrase.split() if len(w) >= 3]
    return frozenset(
        code
        for code, labels in names.items()
        if any(part.startswith(w) for w in words for label in labels for part in label.split())
    )
