"""Turn a screened signal into proposals: filter and rank the social map, reserve a slot for
each proposal, and say why nothing matched when nothing did."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from services.matching import domain, repository
from services.matching.config import MatchingSettings
from services.matching.pc4 import pc4_of
from shared.consumer import Route
from shared.contracts import Envelope, EventType, MatchesProposed, SignalScreened, Topics, utcnow
from shared.outbox import add_event, new_event
from shared.service import Runtime


def request_for(screened: SignalScreened, limit: int) -> domain.MatchRequest:
    signal = screened.signal
    caregiver = signal.caregiver
    age = signal.received_at.year - caregiver.birth_year if caregiver.birth_year else None
    groups = set()
    if age is not None and age < 25:
        groups.add("young_carers")
    if signal.care_situation.combines_with_work:
        groups.add("working_carers")
    if signal.care_recipient.condition and "dement" in signal.care_recipient.condition.casefold():
        groups.add("dementia")
    return domain.MatchRequest(
        needs=list(screened.result.needs), municipality_code=caregiver.municipality_code,
        pc4=pc4_of(caregiver.postcode), caregiver_age=age,
        preferred_language=caregiver.preferred_language.value, target_groups=frozenset(groups), limit=limit,
    )


def make_on_screened(settings: MatchingSettings):
    hold = timedelta(minutes=settings.reservation_hold_minutes)

    async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
        screened = event.payload
        request = request_for(screened, settings.max_proposals)
        candidates = await repository.load_candidates(conn, request.municipality_code, request.pc4)
        now = utcnow()
        outcome = domain.match(request, candidates, now.date())
        proposals = []
        for proposal in outcome.proposals:
            # Another case may have taken the last slot since the candidates were read.
            if await repository.reserve(conn, proposal.service_id, screened.case_id, int(hold.total_seconds() // 60)):
                proposals.append(proposal)
        reason = outcome.no_match_reason or (None if proposals else domain.NO_CAPACITY)
        payload = MatchesProposed(
            signal_id=screened.signal_id, case_id=screened.case_id, proposed_at=now, matches=proposals,
            no_match_reason=reason, result=screened.result, signal=screened.signal,
        )
        await add_event(conn, Topics.MATCHING, new_event(
            EventType.MATCHES_PROPOSED, payload, producer=settings.service_name, subject=event.subject,
            correlation_id=event.correlation_id, causation_id=event.event_id))

    return on_screened


def register_handlers(runtime: Runtime) -> None:
    runtime.consumer.subscribe({
        Topics.SCREENING: {EventType.SIGNAL_SCREENED: Route(SignalScreened, make_on_screened(runtime.settings))},  # type: ignore[arg-type]
    })
