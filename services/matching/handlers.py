"""Turn a screened signal into proposals: filter and rank the social map, hold a slot for
each proposal, and hand escalated or unmatched cases to the caregiver consultant. A provider
that declines frees its slot and the case is matched again, looking further."""

from __future__ import annotations

import asyncpg
import structlog

from services.matching import domain, repository
from services.matching.config import MatchingSettings
from services.matching.metrics import MatchingMetrics
from shared.consumer import PermanentError, Route
from shared.contracts import (
    CaregiverErased,
    Envelope,
    EventType,
    MatchesProposed,
    ReferralStatus,
    ReferralUpdated,
    RiskLevel,
    SignalScreened,
    Topics,
    utcnow,
)
from shared.outbox import add_event, forget_erased, new_event
from shared.tombstones import record_tombstone
from shared.service import Runtime

log = structlog.get_logger(__name__)


async def propose(
    conn: asyncpg.Connection, settings: MatchingSettings, metrics: MatchingMetrics, event: Envelope,
    screened: SignalScreened, *, exclude: frozenset[str] = frozenset(), limit: int | None = None,
) -> None:
    request = domain.request_from(screened, settings.max_proposals if limit is None else limit, exclude)
    candidates = await repository.load_candidates(conn, request.municipality_code, request.pc4)
    now = utcnow()
    outcome = domain.match(request, candidates, now.date())
    proposals = []
    for proposal in outcome.proposals:
        # Another case may have taken the last slot since the candidates were read.
        held = await repository.reserve(conn, proposal.service_id, screened.case_id, settings.reservation_hold_minutes)
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
    metrics.count(matched, reason)
    payload = MatchesProposed(
        signal_id=screened.signal_id, case_id=screened.case_id, proposed_at=now, matches=proposals,
        no_match_reason=reason, result=screened.result, signal=screened.signal,
    )
    await add_event(conn, Topics.MATCHING, new_event(
        EventType.MATCHES_PROPOSED, payload, producer=settings.service_name, subject=event.subject,
        correlation_id=event.correlation_id, causation_id=event.event_id))


def make_handlers(settings: MatchingSettings, metrics: MatchingMetrics):
    async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
        await propose(conn, settings, metrics, event, event.payload)

    async def on_referral(conn: asyncpg.Connection, event: Envelope[ReferralUpdated]) -> None:
        update = event.payload
        if update.status is ReferralStatus.ACCEPTED:
            if update.reservation_id:
                await repository.confirm(conn, update.reservation_id)
            return
        if update.status not in (ReferralStatus.REJECTED, ReferralStatus.CANCELLED, ReferralStatus.FAILED):
            return
        if update.reservation_id:
            await repository.release(conn, update.reservation_id)
        if update.status is not ReferralStatus.REJECTED:
            return
        if update.signal is None or update.result is None:
            raise PermanentError("referral.updated (rejected) without signal and result cannot be re-matched")
        screened = SignalScreened(signal_id=update.signal_id, case_id=update.case_id, screened_at=update.updated_at,
                                  result=update.result, signal=update.signal)
        # Look further than what was already proposed or declined for this case.
        exclude = frozenset(update.excluded_service_ids) | await repository.proposed_for(conn, update.case_id)
        await propose(conn, settings, metrics, event, screened, exclude=exclude, limit=1)

    async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
        p = event.payload
        await record_tombstone(conn, p.caregiver_pseudonym, p.signal_ids, p.case_ids)
        # Matching keeps no personal data of its own: only its retained events carry them.
        await forget_erased(conn, p)

    return on_screened, on_referral, on_erased


def register_handlers(runtime: Runtime[MatchingSettings]) -> None:
    metrics = MatchingMetrics(runtime.metrics.registry)
    runtime.metric_refreshers.append(metrics.refresh)
    on_screened, on_referral, on_erased = make_handlers(runtime.settings, metrics)
    runtime.consumer.subscribe({
        Topics.SCREENING: {EventType.SIGNAL_SCREENED: Route(SignalScreened, on_screened)},
        Topics.NOTIFY: {EventType.REFERRAL_UPDATED: Route(ReferralUpdated, on_referral)},
        Topics.SIGNALS: {EventType.CAREGIVER_ERASED: Route(CaregiverErased, on_erased)},
    })
