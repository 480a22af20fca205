"""Screen each received signal, merge it into the caregiver's case, escalate crises."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from services.screening import domain, repository
from services.screening.config import ScreeningSettings
from shared.consumer import PermanentError, Route
from shared.contracts import (
    CaseEscalated,
    Envelope,
    EventType,
    RiskLevel,
    ScreeningResult,
    SignalReceived,
    SignalScreened,
    Topics,
    utcnow,
)
from shared.instruments import load_catalogue
from shared.outbox import add_event, new_event
from shared.service import Runtime


def make_on_signal(settings: ScreeningSettings):
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
        case = domain.combine_case([
            domain.Contribution(
                signal_id=row["signal_id"], source_kind=row["source_kind"],
                organisation_id=row["organisation_id"], received_at=row["received_at"],
                result=ScreeningResult.model_validate(row["result"]),
            )
            for row in history
        ])
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
        })
        screened = SignalScreened(signal_id=signal.signal_id, case_id=case_id, screened_at=now,
                                  result=result, signal=signal)
        await add_event(conn, Topics.SCREENING, new_event(
            EventType.SIGNAL_SCREENED, screened, producer=settings.service_name, subject=event.subject,
            correlation_id=event.correlation_id, causation_id=event.event_id))
        # Escalate once per case, and again for every new crisis signal: new information.
        if newly_escalated or own.risk_level is RiskLevel.CRISIS:
            escalated = CaseEscalated(
                signal_id=signal.signal_id, case_id=case_id, escalated_at=now,
                municipality_code=signal.caregiver.municipality_code, risk_level=case.risk_level,
                reason="; ".join(case.reasons) or "crisis", signal=signal,
            )
            await add_event(conn, Topics.SCREENING, new_event(
                EventType.CASE_ESCALATED, escalated, producer=settings.service_name,
                subject=event.subject, correlation_id=event.correlation_id, causation_id=event.event_id))

    return on_signal


def register_handlers(runtime: Runtime) -> None:
    runtime.consumer.subscribe({
        Topics.SIGNALS: {EventType.SIGNAL_RECEIVED: Route(SignalReceived, make_on_signal(runtime.settings))},  # type: ignore[arg-type]
    })
