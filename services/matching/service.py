"""Matching's use cases: propose support for a screened signal (filter and rank the social
map, hold a place for each proposal, add the caregiver consultant for escalated or unmatched
cases), record a provider's answer to a referral (a decline frees the place and matches
again, looking further), expire held places, import and export the social map, search it
for the public page, and forget an erased caregiver.

Each takes a ``MatchingUnitOfWork`` (the social map inside one transaction, and the outbox)
and plain inputs; unit tests run them on an in-memory fake (tests/unit/test_matching_service.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.matching import domain, hsds, search
from services.matching.metrics import MatchingMetrics
from services.matching.repository import SocialMapRepository
from shared.consumer import PermanentError
from shared.contracts import (
    CaregiverErased,
    Envelope,
    EventType,
    MatchesProposed,
    ProposedMatch,
    ReferralStatus,
    ReferralUpdated,
    RiskLevel,
    SignalScreened,
    Topics,
)
from shared.uow import Repository, UnitOfWork

# A provider's answer that gives the held place back; only a decline also looks further.
_PLACE_FREED = (ReferralStatus.REJECTED, ReferralStatus.CANCELLED, ReferralStatus.FAILED)


class MatchingUnitOfWork(UnitOfWork):
    """One transaction of the matching database: the social map, and the outbox."""

    topic = Topics.MATCHING
    producer = "matching"

    social_map = Repository(SocialMapRepository)


@dataclass(frozen=True)
class Matcher:
    """What proposing needs besides the screened signal."""

    max_proposals: int
    hold_minutes: int
    metrics: MatchingMetrics


async def propose(
    uow: MatchingUnitOfWork,
    matcher: Matcher,
    screened: SignalScreened,
    cause: Envelope[Any],
    now: datetime,
    *,
    exclude: frozenset[str] = frozenset(),
    limit: int | None = None,
) -> None:
    """Publish ``matches.proposed``: the best services with a place held at each, and the
    caregiver consultant when the case is escalated, a crisis, or nothing was found."""
    request = domain.request_from(screened, matcher.max_proposals if limit is None else limit, exclude)
    candidates = await uow.social_map.load_candidates(request.municipality_code, request.pc4)
    outcome = domain.match(request, candidates, now.date())
    proposals: list[ProposedMatch] = []
    for proposal in outcome.proposals:
        # Another case may have taken the last place since the candidates were read.
        held = await uow.social_map.reserve(proposal.service_id, screened.case_id, matcher.hold_minutes)
        if held:
            proposals.append(proposal.model_copy(update={"reservation_id": held}))
    reason = outcome.no_match_reason or (None if proposals else domain.NO_CAPACITY)
    matched = bool(proposals)  # a service on the map, before any consultant is added
    if screened.escalated or screened.result.risk_level is RiskLevel.CRISIS or not proposals:
        person = domain.consultant(request, candidates)
        if person is not None and person.service_id not in {p.service_id for p in proposals}:
            proposals.append(person)
        elif person is None:
            reason = f"{reason}; {domain.NO_CONSULTANT}" if reason else domain.NO_CONSULTANT
    matcher.metrics.count(matched, reason)
    payload = MatchesProposed(
        signal_id=screened.signal_id,
        case_id=screened.case_id,
        proposed_at=now,
        matches=proposals,
        no_match_reason=reason,
        result=screened.result,
        signal=screened.signal,
    )
    await uow.emit(
        EventType.MATCHES_PROPOSED,
        payload,
        subject=cause.subject,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
    )


async def record_referral_update(
    uow: MatchingUnitOfWork, matcher: Matcher, update: ReferralUpdated, cause: Envelope[Any], now: datetime
) -> None:
    """Accepted: the held place is taken. Declined, cancelled or failed: the place is given
    back; a decline is matched again with one proposal, past every service tried before."""
    if update.status is ReferralStatus.ACCEPTED:
        if update.reservation_id:
            await uow.social_map.confirm(update.reservation_id)
        return
    if update.status not in _PLACE_FREED:
        return
    if update.reservation_id:
        await uow.social_map.release(update.reservation_id)
    if update.status is not ReferralStatus.REJECTED:
        return
    if update.signal is None or update.result is None:
        raise PermanentError("referral.updated (rejected) without signal and result cannot be re-matched")
    screened = SignalScreened(
        signal_id=update.signal_id,
        case_id=update.case_id,
        screened_at=update.updated_at,
        result=update.result,
        signal=update.signal,
    )
    exclude = frozenset(update.excluded_service_ids) | await uow.social_map.proposed_for(update.case_id)
    await propose(uow, matcher, screened, cause, now, exclude=exclude, limit=1)


async def erase(uow: MatchingUnitOfWork, erased: CaregiverErased) -> None:
    """Matching keeps no personal data of its own: only its retained events carry them."""
    await uow.record_erasure(erased)
    await uow.forget_retained(erased)


async def expire_reservations(uow: MatchingUnitOfWork, now: datetime) -> int:
    """Give back the places whose hold ran out; how many."""
    return await uow.social_map.expire_reservations(now)


async def import_social_map(uow: MatchingUnitOfWork, document: Any) -> dict[str, Any]:
    """Import an HSDS JSON document: what was created, updated or unchanged, and every issue
    found in the records (the valid ones are imported)."""
    result = hsds.parse_json(document, file="request body")
    report = await uow.social_map.import_records(result.services)
    return {"services": len(result.services), **asdict(report), "issues": [asdict(i) for i in result.issues]}


async def export_social_map(uow: MatchingUnitOfWork) -> list[dict[str, Any]]:
    """The social map as imported, HSDS ``service_full`` records."""
    return await uow.social_map.stored_records()


async def find_support(
    uow: MatchingUnitOfWork, municipality_code: str, pc4: str | None, query: str
) -> list[search.Card]:
    """The public social map's cards: the active services of the area that match ``query``."""
    return search.search(await uow.social_map.records_in_area(municipality_code, pc4), query)
