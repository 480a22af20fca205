"""Screen each received signal, merge it into the caregiver's case, escalate crises; re-screen
with the answers a caregiver consultant recorded, and stop re-screens of a closed case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from services.screening import domain, repository
from services.screening.config import ScreeningSettings
from services.screening.metrics import ScreeningMetrics
from shared.consumer import PermanentError, Route
from shared.contracts import (
    CaregiverErased,
    CaseAnswersRecorded,
    CaseClosed,
    CaseEscalated,
    CloseReason,
    Envelope,
    ErasureScope,
    EventType,
    FollowUpRecorded,
    RescreenDue,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
    SignalScreened,
    Topics,
    utcnow,
)
from shared.instruments import load_catalogue
from shared.outbox import add_event, forget_erased, new_event
from shared.sealing import slim
from shared.tombstones import record_tombstone
from shared.service import Runtime


def _combine(history: list[asyncpg.Record]) -> domain.CaseAssessment:
    return domain.combine_case([
        domain.Contribution(
            signal_id=row["signal_id"], source_kind=row["source_kind"],
            organisation_id=row["organisation_id"], received_at=row["received_at"],
            result=ScreeningResult.model_validate(row["result"]),
        )
        for row in history
    ])


def make_on_signal(settings: ScreeningSettings, metrics: ScreeningMetrics):
    catalogue = load_catalogue()
    window = timedelta(days=settings.case_merge_window_days)

    async def on_signal(conn: asyncpg.Connection, event: Envelope[SignalReceived]) -> None:
        signal = event.payload
        try:
            own = domain.assess(signal, catalogue)
        except domain.InvalidScreeningInput as exc:
            raise PermanentError(str(exc)) from exc
        now = utcnow()
        case_id, _ = await repository.open_case_for(
            conn, event.subject, signal.caregiver.municipality_code, signal.received_at, window
        )
        await repository.add_screening(
            conn, signal_id=signal.signal_id, case_id=case_id, organisation_id=signal.organisation_id,
            source_kind=signal.source.kind.value, received_at=signal.received_at, screened_at=now,
            result=own.model_dump(mode="json"),
        )
        history = await repository.case_screenings(conn, case_id)
        case = _combine(history)
        rescreen_at = domain.rescreen_due(case.risk_level, now)
        newly_escalated = await repository.update_case(
            conn, case_id, last_signal_at=signal.received_at, risk_level=case.risk_level.value,
            confidence=str(case.confidence), assessment={"reasons": case.reasons, "signals": len(history)},
            rescreen_due_at=rescreen_at, escalated=case.escalate,
        )
        # The signal's own scores, judged in the light of the whole case.
        result = own.model_copy(update={
            "risk_level": case.risk_level,
            "reasons": list(dict.fromkeys([*own.reasons, *case.reasons])),
            "needs": case.needs,
            "recipient_groups": domain.recipient_groups(signal),
        })
        # Later stages get no note, care recipient, answers or observations (slim contract).
        forwarded = slim(signal)
        # Escalate once per case, and again for every new crisis signal: new information.
        escalate = newly_escalated or own.risk_level is RiskLevel.CRISIS
        screened = SignalScreened(signal_id=signal.signal_id, case_id=case_id, screened_at=now,
                                  result=result, signal=forwarded, escalated=escalate, own_result=own)
        await add_event(conn, Topics.SCREENING, new_event(
            EventType.SIGNAL_SCREENED, screened, producer=settings.service_name, subject=event.subject,
            correlation_id=event.correlation_id, causation_id=event.event_id))
        metrics.screenings.labels(case.risk_level.value).inc()
        if escalate:
            metrics.escalations.labels(case.risk_level.value).inc()
            escalated = CaseEscalated(
                signal_id=signal.signal_id, case_id=case_id, escalated_at=now,
                municipality_code=signal.caregiver.municipality_code, risk_level=case.risk_level,
                reason="; ".join(case.reasons) or "crisis", signal=forwarded,
            )
            await add_event(conn, Topics.SCREENING, new_event(
                EventType.CASE_ESCALATED, escalated, producer=settings.service_name,
                subject=event.subject, correlation_id=event.correlation_id, causation_id=event.event_id))

    return on_signal


def make_on_answers(on_signal: Any):
    """The consultant's recorded answers arrive as a signal of their own: screened like any."""

    async def on_answers(conn: asyncpg.Connection, event: Envelope[CaseAnswersRecorded]) -> None:
        await on_signal(conn, event.model_copy(update={"payload": event.payload.signal}))

    return on_answers


async def on_closed(conn: asyncpg.Connection, event: Envelope[CaseClosed]) -> None:
    # Support in place: the scheduled re-screen checks that it holds. Any other reason (above
    # all a death) ends the burden screenings; a new signal opens the case anew.
    p = event.payload
    await repository.close_case(conn, p.case_id, p.closed_at, p.reason.value,
                                stop_rescreens=p.reason is not CloseReason.SUPPORT_IN_PLACE)


async def on_follow_up(conn: asyncpg.Connection, event: Envelope[FollowUpRecorded]) -> None:
    # POM: support that did not arrive means the burden must be measured again, now.
    if not event.payload.support_arrived:
        await repository.rescreen_now(conn, event.payload.case_id, utcnow())


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    p = event.payload
    await record_tombstone(conn, p.caregiver_pseudonym, p.signal_ids, p.case_ids)
    if p.scope is ErasureScope.SIGNALS:
        # The case stays for the other organisations' signals, judged without the withdrawn ones.
        for case_id in await repository.withdraw_signals(conn, p.signal_ids):
            history = await repository.case_screenings(conn, case_id)
            case = _combine(history)
            await repository.reassess_case(
                conn, case_id, risk_level=case.risk_level.value, confidence=str(case.confidence),
                assessment={"reasons": case.reasons, "signals": len(history)})
    else:
        await repository.erase_caregiver(conn, p.caregiver_pseudonym)
    await forget_erased(conn, p)


async def emit_due_rescreens(runtime: Runtime) -> int:
    """Emit rescreen.due for every case whose follow-up measurement is due."""
    now = utcnow()
    async with runtime.pool.acquire() as conn, conn.transaction():
        due = await repository.claim_due_rescreens(conn, now)
        for case in due:
            payload = RescreenDue(case_id=case["id"], last_signal_id=case["last_signal_id"],
                                  risk_level=case["risk_level"], due_at=case["rescreen_due_at"],
                                  municipality_code=case["municipality_code"])
            await add_event(conn, Topics.SCREENING, new_event(
                EventType.RESCREEN_DUE, payload, producer=runtime.settings.service_name,
                subject=case["caregiver_pseudonym"], correlation_id=str(case["last_signal_id"])))
            await repository.mark_rescreen_emitted(conn, case["id"], now)
    return len(due)


def register_handlers(runtime: Runtime[ScreeningSettings]) -> None:
    on_signal = make_on_signal(runtime.settings, ScreeningMetrics(runtime.metrics.registry))
    runtime.consumer.subscribe({
        Topics.SIGNALS: {
            EventType.SIGNAL_RECEIVED: Route(SignalReceived, on_signal),
            EventType.CAREGIVER_ERASED: Route(CaregiverErased, on_erased),
        },
        Topics.NOTIFY: {EventType.FOLLOW_UP_RECORDED: Route(FollowUpRecorded, on_follow_up)},
        Topics.CASEWORK: {
            EventType.CASE_ANSWERS_RECORDED: Route(CaseAnswersRecorded, make_on_answers(on_signal)),
            EventType.CASE_CLOSED: Route(CaseClosed, on_closed),
        },
    })
