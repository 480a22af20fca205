"""Screening's use cases: screen a received signal and merge it into the caregiver's case
(escalating a crisis), re-screen with a consultant's answers, close a case, make a re-screen
due now, emit the due re-screens, and forget an erased caregiver.

Each takes a ``ScreeningUnitOfWork`` (the case repository inside one transaction, and the
outbox) and plain inputs; it opens no connection itself, so its unit tests use an in-memory
fake (tests/unit/test_screening_service.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.screening import domain
from services.screening.metrics import ScreeningMetrics
from services.screening.repository import CaseRepository
from shared.consumer import PermanentError
from shared.contracts import (
    CaregiverErased,
    CaseClosed,
    CaseEscalated,
    CloseReason,
    Envelope,
    ErasureScope,
    EventType,
    RescreenDue,
    RiskLevel,
    SignalReceived,
    SignalScreened,
    Topics,
)
from shared.instruments import Catalogue, load_catalogue
from shared.sealing import slim
from shared.uow import Repository, UnitOfWork


class ScreeningUnitOfWork(UnitOfWork):
    """One transaction of the screening database: its cases, and the outbox."""

    topic = Topics.SCREENING
    producer = "screening"

    cases = Repository(CaseRepository)


@dataclass(frozen=True)
class Screener:
    """What screening a signal needs besides the signal: the instruments, the merge window and
    the counters."""

    merge_window: timedelta
    metrics: ScreeningMetrics
    catalogue: Catalogue = field(default_factory=load_catalogue)


async def screen_signal(
    uow: ScreeningUnitOfWork, screener: Screener, signal: SignalReceived, cause: Envelope[Any], now: datetime
) -> None:
    """Judge the signal, merge it into the caregiver's case, judge the case anew, and publish
    ``signal.screened`` (plus ``case.escalated`` when the case needs a consultant now)."""
    try:
        own = domain.assess(signal, screener.catalogue)
    except domain.InvalidScreeningInput as exc:
        raise PermanentError(str(exc)) from exc
    case_id, _ = await uow.cases.open_case_for(
        cause.subject, signal.caregiver.municipality_code, signal.received_at, screener.merge_window
    )
    await uow.cases.add_screening(
        case_id,
        domain.Contribution(
            signal_id=signal.signal_id,
            source_kind=signal.source.kind,
            organisation_id=signal.organisation_id,
            received_at=signal.received_at,
            result=own,
        ),
        screened_at=now,
    )
    history = await uow.cases.screenings(case_id)
    case = domain.combine_case(history)
    newly_escalated = await uow.cases.update_case(
        case_id,
        case,
        signals=len(history),
        last_signal_at=signal.received_at,
        rescreen_due_at=domain.rescreen_due(case.risk_level, now),
    )
    # The signal's own scores, judged in the light of the whole case.
    result = own.model_copy(
        update={
            "risk_level": case.risk_level,
            "reasons": list(dict.fromkeys([*own.reasons, *case.reasons])),
            "needs": case.needs,
            "recipient_groups": domain.recipient_groups(signal),
        }
    )
    # Later stages get no note, care recipient, answers or observations (slim contract).
    forwarded = slim(signal)
    # Escalate once per case, and again for every new crisis signal: new information.
    escalate = newly_escalated or own.risk_level is RiskLevel.CRISIS
    await _publish(
        uow,
        cause,
        EventType.SIGNAL_SCREENED,
        SignalScreened(
            signal_id=signal.signal_id,
            case_id=case_id,
            screened_at=now,
            result=result,
            signal=forwarded,
            escalated=escalate,
            own_result=own,
        ),
    )
    screener.metrics.screenings.labels(case.risk_level.value).inc()
    if escalate:
        screener.metrics.escalations.labels(case.risk_level.value).inc()
        await _publish(
            uow,
            cause,
            EventType.CASE_ESCALATED,
            CaseEscalated(
                signal_id=signal.signal_id,
                case_id=case_id,
                escalated_at=now,
                municipality_code=signal.caregiver.municipality_code,
                risk_level=case.risk_level,
                reason="; ".join(case.reasons) or "crisis",
                signal=forwarded,
            ),
        )


async def _publish(
    uow: ScreeningUnitOfWork, cause: Envelope[Any], event_type: str, payload: SignalScreened | CaseEscalated
) -> None:
    await uow.emit(
        event_type, payload, subject=cause.subject, correlation_id=cause.correlation_id, causation_id=cause.event_id
    )


async def close_case(uow: ScreeningUnitOfWork, closed: CaseClosed) -> None:
    """Support in place: the scheduled re-screen checks that it holds. Any other reason (above
    all a death) ends the burden screenings; a new signal opens the case anew."""
    await uow.cases.close_case(
        closed.case_id,
        closed.closed_at,
        closed.reason,
        stop_rescreens=closed.reason is not CloseReason.SUPPORT_IN_PLACE,
    )


async def record_follow_up(uow: ScreeningUnitOfWork, case_id: UUID, support_arrived: bool, now: datetime) -> None:
    """POM: support that did not arrive means the burden must be measured again, now."""
    if not support_arrived:
        await uow.cases.rescreen_now(case_id, now)


async def erase(uow: ScreeningUnitOfWork, erased: CaregiverErased) -> None:
    """Forget the caregiver, or only the withdrawn signals: then the case stays for the other
    organisations' signals, judged without the withdrawn ones."""
    await uow.record_erasure(erased)
    if erased.scope is ErasureScope.SIGNALS:
        for case_id in await uow.cases.withdraw_signals(erased.signal_ids):
            history = await uow.cases.screenings(case_id)
            await uow.cases.reassess_case(case_id, domain.combine_case(history), signals=len(history))
    else:
        await uow.cases.erase_caregiver(erased.caregiver_pseudonym)
    await uow.forget_retained(erased)


async def emit_due_rescreens(uow: ScreeningUnitOfWork, now: datetime) -> int:
    """Publish ``rescreen.due`` for every case whose follow-up measurement is due; how many."""
    due = await uow.cases.claim_due_rescreens(now)
    for case in due:
        payload = RescreenDue(
            case_id=case.case_id,
            last_signal_id=case.last_signal_id,
            risk_level=case.risk_level,
            due_at=case.due_at,
            municipality_code=case.municipality_code,
        )
        await uow.emit(
            EventType.RESCREEN_DUE, payload, subject=case.caregiver_pseudonym, correlation_id=str(case.last_signal_id)
        )
        await uow.cases.mark_rescreen_emitted(case.case_id, now)
    return len(due)
