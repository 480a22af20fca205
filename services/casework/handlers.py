"""Consumers: every pipeline event about a case updates the consultant's view of it, in the
inbox's transaction; when the case then needs a person, the referrers are told a person has
it (``service.take_up``). ``caregiver.erased`` forgets the person or the withdrawn signals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.casework import domain, repository, service
from services.casework.config import CaseworkSettings
from shared.contracts import (
    CaregiverErased,
    CaseEscalated,
    Envelope,
    ErasureScope,
    EventType,
    FollowUpRecorded,
    MatchesProposed,
    ReferralUpdated,
    RescreenDue,
    SignalReceived,
    SignalScreened,
    Topics,
    utcnow,
)
from shared.outbox import forget_erased
from shared.service import Runtime
from shared.tombstones import record_tombstone

log = structlog.get_logger(__name__)
Handler = Callable[[asyncpg.Connection, Envelope[Any]], Awaitable[None]]


def _personal(signal: SignalReceived) -> dict[str, Any]:
    return signal.model_dump(mode="json", include={"caregiver", "care_recipient", "care_situation"})


async def _ensure(conn: asyncpg.Connection, case_id: UUID, subject: str, signal: SignalReceived | None) -> bool:
    """The case exists here (events of another topic may arrive before its screening)."""
    if signal is not None:
        await repository.ensure_case(conn, case_id, subject, signal.caregiver.municipality_code,
                                     _personal(signal), utcnow())
    return await repository.case(conn, case_id) is not None


def make_handlers(settings: CaseworkSettings) -> dict[str, Handler]:
    async def after(conn: asyncpg.Connection, case_id: UUID) -> None:
        await service.take_up(conn, settings, case_id, utcnow())

    async def on_screened(conn: asyncpg.Connection, event: Envelope[SignalScreened]) -> None:
        p, now = event.payload, utcnow()
        signal = p.signal
        await _ensure(conn, p.case_id, event.subject, signal)
        case = await repository.case(conn, p.case_id, lock=True)
        added = await repository.add_signal(conn, p.case_id, signal.model_dump(mode="json"),
                                            (p.own_result or p.result).model_dump(mode="json"))
        derailed = domain.is_derailed(signal, p.result)
        crisis = domain.is_crisis(signal, p.result.risk_level.value) or derailed
        await repository.update_case(
            conn, p.case_id, now, personal=_personal(signal), risk_level=p.result.risk_level.value,
            result=p.result.model_dump(mode="json"),
            crisis_since=case["crisis_since"] or (signal.received_at if crisis else None),
            derailed=case["derailed"] or derailed,
            outreach=domain.outreach(signal), contact_preference=signal.caregiver.contact_preference.value,
            escalated_at=case["escalated_at"] or (now if p.escalated else None),
            # A partner's new signal is news: the case is open again if it was closed.
            closed_at=None if added and signal.organisation_id != service.CASEWORK_ORGANISATION
            else case["closed_at"],
        )
        if added:
            await repository.add_event(conn, p.case_id, signal.received_at, "signal",
                                       {"source": signal.source.kind.value, "risk_level": p.result.risk_level.value},
                                       {"organisation": signal.organisation_name})
        await after(conn, p.case_id)

    async def on_escalated(conn: asyncpg.Connection, event: Envelope[CaseEscalated]) -> None:
        p = event.payload
        await _ensure(conn, p.case_id, event.subject, p.signal)
        case = await repository.case(conn, p.case_id, lock=True)
        await repository.update_case(conn, p.case_id, utcnow(), escalated_at=case["escalated_at"] or p.escalated_at,
                                     escalation_reason=p.reason)
        await after(conn, p.case_id)

    async def on_matches(conn: asyncpg.Connection, event: Envelope[MatchesProposed]) -> None:
        p = event.payload
        await _ensure(conn, p.case_id, event.subject, p.signal)
        providers = [m for m in p.matches if not m.consultant]
        await repository.update_case(
            conn, p.case_id, utcnow(), proposals=[m.model_dump(mode="json", exclude={"contact_email"})
                                                  for m in p.matches],
            unmatched=not providers, no_match_reason=p.no_match_reason)
        for match in providers:
            await repository.propose(conn, p.case_id, match.service_id, match.service_name, p.proposed_at)
        await after(conn, p.case_id)

    async def on_referral(conn: asyncpg.Connection, event: Envelope[ReferralUpdated]) -> None:
        p = event.payload
        if not await _ensure(conn, p.case_id, event.subject, p.signal):
            log.info("referral update for a case not known here ignored")
            return
        await repository.referral_update(conn, p.case_id, p.service_id, p.referral_id, p.service_name,
                                         p.status.value, p.reason_code.value if p.reason_code else None, p.updated_at)
        await repository.add_event(conn, p.case_id, p.updated_at, "referral",
                                   {"service": p.service_name, "status": p.status.value,
                                    "reason_code": p.reason_code.value if p.reason_code else None}, by=p.updated_by)
        await after(conn, p.case_id)

    async def on_follow_up(conn: asyncpg.Connection, event: Envelope[FollowUpRecorded]) -> None:
        p = event.payload
        if not await _ensure(conn, p.case_id, event.subject, None):
            return
        await repository.update_case(conn, p.case_id, utcnow(),
                                     support_not_arrived_at=None if p.support_arrived else p.recorded_at)
        await repository.add_event(conn, p.case_id, p.recorded_at, "follow_up", {"support_arrived": p.support_arrived})
        await after(conn, p.case_id)

    async def on_rescreen_due(conn: asyncpg.Connection, event: Envelope[RescreenDue]) -> None:
        p = event.payload
        if not await _ensure(conn, p.case_id, event.subject, None):
            return
        # A re-screen of a case closed with support in place opens it again: is it holding?
        await repository.update_case(conn, p.case_id, utcnow(), rescreen_due_at=p.due_at, closed_at=None)
        await repository.add_event(conn, p.case_id, p.due_at, "rescreen_due", {})
        await after(conn, p.case_id)

    async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
        p = event.payload
        await record_tombstone(conn, p.caregiver_pseudonym, p.signal_ids, p.case_ids)
        await repository.erase(conn, p.signal_ids, p.case_ids, whole_cases=p.scope is ErasureScope.CAREGIVER)
        await forget_erased(conn, p)

    return {"screened": on_screened, "escalated": on_escalated, "matches": on_matches, "referral": on_referral,
            "follow_up": on_follow_up, "rescreen_due": on_rescreen_due, "erased": on_erased}


def register_handlers(runtime: Runtime) -> None:
    h = make_handlers(runtime.settings)  # type: ignore[arg-type]
    runtime.consumer.subscribe({
        Topics.SIGNALS: {EventType.CAREGIVER_ERASED: h["erased"]},
        Topics.SCREENING: {
            EventType.SIGNAL_SCREENED: h["screened"],
            EventType.CASE_ESCALATED: h["escalated"],
            EventType.RESCREEN_DUE: h["rescreen_due"],
        },
        Topics.MATCHING: {EventType.MATCHES_PROPOSED: h["matches"]},
        Topics.NOTIFY: {
            EventType.REFERRAL_UPDATED: h["referral"],
            EventType.FOLLOW_UP_RECORDED: h["follow_up"],
        },
    })
