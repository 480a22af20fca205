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
        _term("caregiver_cafe", "Mantelzorgcafé", "Caregiver café",
              Need.PEER_CONTACT, Need.EMOTIONAL_SUPPORT, Need.INFORMATION_ADVICE),
        _term("peer_contact", "Lotgenotencontact", "Peer contact",
              Need.PEER_CONTACT, Need.EMOTIONAL_SUPPORT),
        _term("household_help", "Huishoudelijke hulp", "Household help", Need.PRACTICAL_HELP),
        _term("caregiver_consultant", "Mantelzorgconsulent", "Caregiver consultant",
              Need.INFORMATION_ADVICE, Need.EMOTIONAL_SUPPORT, Need.CASE_MANAGEMENT),
        # A volunteer at home both helps in practice and lets the caregiver take a break.
        _term("volunteer_help", "Vrijwillige hulp", "Volunteer help",
              Need.PRACTICAL_HELP, Need.RESPITE_CARE),
        _term("training", "Training en cursus", "Training and courses", Need.INFORMATION_ADVICE),
        _term("financial_administrative", "Financiële en administratieve hulp",
              "Financial and administrative help", Need.FINANCIAL_ADMINISTRATIVE),
        _term("young_carers", "Jonge mantelzorgers", "Young carers",
              Need.YOUNG_CARER_SUPPORT, target_group=True),
        _term("working_carers", "Werkende mantelzorgers", "Working carers",
              Need.WORK_CARE_BALANCE, target_group=True),
        # Dementia describes the person cared for, not a kind of help: it covers no need.
        _term("dementia", "Dementie", "Dementia", target_group=True),
    )
}

TARGET_GROUPS = frozenset(code for code, term in TERMS.items() if term.target_group)


def needs_covered(codes: Iterable[str]) -> frozenset[Need]:
    """The needs answered by a service tagged with these codes (unknown codes cover nothing)."""
    return frozenset(need for code in codes if code in TERMS for need in TERMS[code].needs)
