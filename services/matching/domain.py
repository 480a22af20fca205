"""Pure matching: which services on the social map fit a caregiver's needs, and why.

``match`` filters the candidates (service area, status, eligibility, need coverage,
capacity), ranks the rest and explains every proposal and every exclusion, so a caregiver
consultant can defend the outcome. No I/O, no clock: the caller passes ``today``. Equal
inputs give equal outputs, ties broken by service id."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from services.matching import pc4
from services.matching.taxonomy import TARGET_GROUPS, TERMS, needs_covered
from shared.contracts import MatchExplanation, Need, ProposedMatch, SignalScreened

# Weights of the score parts; they sum to 1 so a score reads as a fraction of a perfect fit.
WEIGHTS = {"need_coverage": 0.5, "distance": 0.2, "capacity": 0.1, "freshness": 0.1, "preference": 0.1}
# Distance halves the distance part every this many kilometres.
DISTANCE_HALF_KM = 5.0
# An entry checked within this many days is fresh; after STALE_DAYS it earns nothing.
FRESH_DAYS = 180
STALE_DAYS = 730
# Unknown distance or capacity scores in the middle: neither rewarded nor punished.
UNKNOWN = 0.5

NO_NEEDS = "no needs to match"
NO_SERVICES_IN_AREA = "no services in area"
NO_ACTIVE_SERVICES = "no active services"
NOT_ELIGIBLE = "not eligible"
NEEDS_NOT_COVERED = "needs not covered"
NO_CAPACITY = "no capacity"
NO_CONSULTANT = "no caregiver consultant for this area on the social map"

CONSULTANT = "caregiver_consultant"


@dataclass(frozen=True)
class Candidate:
    """A service as matching sees it.

    ``pc4s``: when non-empty, the service serves only these postcode areas of its
    municipalities; empty means whole municipalities. ``capacity_available`` None means the
    service does not publish capacity (treated as open)."""

    service_id: str
    service_name: str
    organization_name: str
    status: str
    terms: frozenset[str] = frozenset()
    municipality_codes: frozenset[str] = frozenset()
    pc4s: frozenset[str] = frozenset()
    min_age: int | None = None
    max_age: int | None = None
    languages: frozenset[str] = frozenset()
    latitude: float | None = None
    longitude: float | None = None
    capacity_available: int | None = None
    assured_date: date | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    address: str | None = None
    url: str | None = None

    @property
    def contact(self) -> dict[str, str | None]:
        return {
            "contact_email": self.contact_email,
            "contact_phone": self.contact_phone,
            "address": self.address,
            "url": self.url,
        }


@dataclass(frozen=True)
class MatchRequest:
    needs: list[Need]
    municipality_code: str
    pc4: str | None = None
    caregiver_age: int | None = None
    preferred_language: str | None = None
    target_groups: frozenset[str] = frozenset()
    latitude: float | None = None
    longitude: float | None = None
    limit: int = 3
    # Services already proposed for this case (or declined): re-matching looks further.
    exclude_service_ids: frozenset[str] = frozenset()


def request_from(screened: SignalScreened, limit: int, exclude: frozenset[str] = frozenset()) -> MatchRequest:
    """What to look for, from what screening judged and what the referrer told."""
    signal = screened.signal
    caregiver = signal.caregiver
    age = signal.received_at.year - caregiver.birth_year if caregiver.birth_year else None
    groups = set()
    if age is not None and age < 25:
        groups.add("young_carers")
    if signal.care_situation.combines_with_work:
        groups.add("working_carers")
    if screened.result.recipient_groups is not None:
        groups.update(screened.result.recipient_groups)
    elif signal.care_recipient.condition and "dement" in signal.care_recipient.condition.casefold():
        groups.add("dementia")  # a producer from before recipient_groups sent the condition
    return MatchRequest(
        needs=list(screened.result.needs),
        municipality_code=caregiver.municipality_code,
        pc4=pc4.pc4_of(caregiver.postcode),
        caregiver_age=age,
        preferred_language=caregiver.preferred_language.value,
        target_groups=frozenset(groups),
        limit=limit,
        exclude_service_ids=exclude,
    )


def consultant(request: MatchRequest, candidates: list[Candidate]) -> ProposedMatch | None:
    """The municipality's caregiver consultant for an escalated or unmatched case: a person
    who acts on it, whatever the caregiver's needs or a service's capacity."""
    eligible = [c for c in candidates if CONSULTANT in c.terms and c.status == "active" and _area_reason(request, c)[0]]
    if not eligible:
        return None
    origin = _origin(request)
    best = min(
        eligible,
        key=lambda c: (
            haversine_km(origin, (c.latitude, c.longitude))
            if origin and c.latitude is not None and c.longitude is not None
            else 0.0,
            c.service_id,
        ),
    )
    return ProposedMatch(
        service_id=best.service_id,
        service_name=best.service_name,
        organization_name=best.organization_name,
        category=CONSULTANT,
        score=0.0,
        **best.contact,
        consultant=True,
        explanation=MatchExplanation(eligibility=["caregiver consultant for the caregiver's area"]),
    )


@dataclass(frozen=True)
class MatchOutcome:
    proposals: list[ProposedMatch]
    excluded: list[tuple[str, str]] = field(default_factory=list)
    no_match_reason: str | None = None


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _area_reason(request: MatchRequest, c: Candidate) -> tuple[bool, str]:
    if request.municipality_code not in c.municipality_codes:
        return False, f"outside service area (does not serve {request.municipality_code})"
    if not c.pc4s:
        return True, f"serves {request.municipality_code}"
    if request.pc4 is None:
        # Without a postcode we cannot rule the caregiver out; the explanation says so.
        return True, f"serves part of {request.municipality_code} (postcode unknown)"
    if request.pc4 in c.pc4s:
        return True, f"serves postcode area {request.pc4}"
    return False, f"outside service area (does not serve postcode area {request.pc4})"


def _eligibility(request: MatchRequest, c: Candidate) -> tuple[list[str], str | None]:
    """Reasons the caregiver is eligible, or the reason they are not."""
    reasons: list[str] = []
    age = request.caregiver_age
    if c.min_age is not None or c.max_age is not None:
        bounds = f"{c.min_age if c.min_age is not None else ''}–{c.max_age if c.max_age is not None else ''}"
        if age is None:
            reasons.append(f"age {bounds} (caregiver's age unknown)")
        elif (c.min_age is not None and age < c.min_age) or (c.max_age is not None and age > c.max_age):
            return [], f"not eligible: age {age} outside {bounds}"
        else:
            reasons.append(f"age {age} within {bounds}")
    groups = c.terms & TARGET_GROUPS
    if groups:
        shared = groups & request.target_groups
        if not shared:
            return [], f"not eligible: only for {', '.join(sorted(groups))}"
        reasons.append(f"for {', '.join(sorted(shared))}")
    if request.preferred_language and c.languages:
        if request.preferred_language not in c.languages:
            return [], f"not eligible: not offered in {request.preferred_language}"
        reasons.append(f"offered in {request.preferred_language}")
    return reasons, None


def _origin(request: MatchRequest) -> tuple[float, float] | None:
    if request.latitude is not None and request.longitude is not None:
        return (request.latitude, request.longitude)
    return pc4.centroid(request.pc4)


def _score_parts(request: MatchRequest, c: Candidate, covered: list[Need], today: date) -> dict[str, float]:
    origin = _origin(request)
    if origin is None or c.latitude is None or c.longitude is None:
        distance = UNKNOWN
    else:
        distance = 0.5 ** (haversine_km(origin, (c.latitude, c.longitude)) / DISTANCE_HALF_KM)
    # A full service never gets here; a known free place beats a capacity nobody published,
    # but one place or ten makes no difference to the caregiver who needs one.
    capacity = UNKNOWN if c.capacity_available is None else 1.0
    if c.assured_date is None:
        freshness = 0.0
    else:
        age_days = max((today - c.assured_date).days, 0)
        freshness = 1.0 if age_days <= FRESH_DAYS else max(0.0, 1 - (age_days - FRESH_DAYS) / (STALE_DAYS - FRESH_DAYS))
    # A service made for the caregiver's own group, or in their own language, fits better.
    preference = 0.0
    if c.terms & TARGET_GROUPS & request.target_groups:
        preference += 0.5
    if request.preferred_language and request.preferred_language in c.languages:
        preference += 0.5
    raw = {
        "need_coverage": len(covered) / len(set(request.needs)),
        "distance": distance,
        "capacity": capacity,
        "freshness": freshness,
        "preference": preference,
    }
    return {name: round(WEIGHTS[name] * value, 4) for name, value in raw.items()}


def _category(c: Candidate, covered: list[Need]) -> str:
    """The term that best names the service for these needs (ties: taxonomy order)."""
    order = list(TERMS)
    return max(
        (code for code in order if code in c.terms),
        key=lambda code: (len(TERMS[code].needs & set(covered)), -order.index(code)),
    )


def _exclusion(
    c: Candidate, area_ok: bool, area_reason: str, refusal: str | None, covered: list[Need]
) -> tuple[int, str] | None:
    """(stage, reason) of the first filter the candidate fails, in the order of STAGES."""
    if not area_ok:
        return 0, area_reason
    if c.status != "active":
        return 1, f"service is {c.status}"
    if refusal:
        return 2, refusal
    if not covered:
        return 3, "covers none of the needs"
    if c.capacity_available == 0:
        return 4, "no capacity"
    return None


# The outcome when nothing is proposed: the furthest stage any candidate reached, since that
# is where the social map falls short for this caregiver.
STAGES = (NO_SERVICES_IN_AREA, NO_ACTIVE_SERVICES, NOT_ELIGIBLE, NEEDS_NOT_COVERED, NO_CAPACITY)


def match(request: MatchRequest, candidates: list[Candidate], today: date) -> MatchOutcome:
    """At most ``request.limit`` proposals, best first, each covering at least one need."""
    if not request.needs:
        return MatchOutcome([], [], NO_NEEDS)
    wanted = list(dict.fromkeys(request.needs))
    excluded: list[tuple[str, str]] = []
    furthest = 0
    proposals: list[ProposedMatch] = []
    for c in sorted(candidates, key=lambda c: c.service_id):
        if c.service_id in request.exclude_service_ids:
            excluded.append((c.service_id, "already proposed for this case"))
            continue
        area_ok, area_reason = _area_reason(request, c)
        reasons, refusal = _eligibility(request, c)
        covered = [n for n in wanted if n in needs_covered(c.terms)]
        exclusion = _exclusion(c, area_ok, area_reason, refusal, covered)
        if exclusion:
            furthest = max(furthest, exclusion[0])
            excluded.append((c.service_id, exclusion[1]))
            continue
        parts = _score_parts(request, c, covered, today)
        proposals.append(
            ProposedMatch(
                service_id=c.service_id,
                service_name=c.service_name,
                organization_name=c.organization_name,
                category=_category(c, covered),
                score=round(sum(parts.values()), 4),
                **c.contact,
                explanation=MatchExplanation(
                    covers_needs=covered, eligibility=[area_reason, *reasons], score_parts=parts
                ),
            )
        )
    if not proposals:
        return MatchOutcome([], excluded, STAGES[furthest])
    proposals.sort(key=lambda p: (-p.score, p.service_id))
    return MatchOutcome(proposals[: max(request.limit, 0)], excluded, None)
