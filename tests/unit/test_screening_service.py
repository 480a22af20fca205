"""Screening's use cases over an in-memory case repository: what they store and publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from prometheus_client import CollectorRegistry

from services.screening import service
from services.screening.domain import CaseAssessment, Contribution, DueRescreen
from services.screening.metrics import ScreeningMetrics
from services.screening.service import Screener
from shared.consumer import PermanentError
from shared.contracts import (
    CaregiverErased,
    CaseClosed,
    CloseReason,
    ErasureScope,
    EventType,
    RiskLevel,
    SignalReceived,
    Topics,
)
from shared.outbox import new_event
from tests.fakes import FakeUnitOfWork
from tests.unit.test_screening_domain import calm, make_signal

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PERSON = "pseudonym-anna"


@dataclass
class FakeCase:
    id: UUID
    pseudonym: str
    municipality_code: str
    last_signal_at: datetime
    screenings: list[Contribution] = field(default_factory=list)
    judged: CaseAssessment | None = None
    escalated: bool = False
    rescreen_due_at: datetime | None = None
    rescreen_emitted_at: datetime | None = None
    closed: CloseReason | None = None


class FakeCases:
    """The case repository's contract, in memory."""

    def __init__(self) -> None:
        self.cases: dict[UUID, FakeCase] = {}

    async def open_case_for(
        self, pseudonym: str, municipality_code: str, at: datetime, window: timedelta
    ) -> tuple[UUID, bool]:
        for case in self.cases.values():
            if case.pseudonym == pseudonym and case.last_signal_at >= at - window:
                return case.id, False
        case = FakeCase(uuid.uuid4(), pseudonym, municipality_code, at)
        self.cases[case.id] = case
        return case.id, True

    async def add_screening(self, case_id: UUID, screening: Contribution, screened_at: datetime) -> None:
        self.cases[case_id].screenings.append(screening)

    async def screenings(self, case_id: UUID) -> list[Contribution]:
        return sorted(self.cases[case_id].screenings, key=lambda c: (c.received_at, c.signal_id))

    async def update_case(
        self,
        case_id: UUID,
        case: CaseAssessment,
        *,
        signals: int,
        last_signal_at: datetime,
        rescreen_due_at: datetime | None,
    ) -> bool:
        stored = self.cases[case_id]
        first = case.escalate and not stored.escalated
        stored.judged, stored.rescreen_due_at, stored.closed = case, rescreen_due_at, None
        stored.escalated = stored.escalated or case.escalate
        stored.last_signal_at = max(stored.last_signal_at, last_signal_at)
        return first

    async def reassess_case(self, case_id: UUID, case: CaseAssessment, *, signals: int) -> None:
        self.cases[case_id].judged = case

    async def claim_due_rescreens(self, now: datetime, limit: int = 100) -> list[DueRescreen]:
        return [
            DueRescreen(
                c.id,
                c.pseudonym,
                c.municipality_code,
                c.judged.risk_level if c.judged else RiskLevel.IN_BALANCE,
                c.rescreen_due_at,
                c.screenings[-1].signal_id,
            )
            for c in self.cases.values()
            if c.rescreen_due_at is not None and c.rescreen_due_at <= now and c.rescreen_emitted_at is None
        ]

    async def mark_rescreen_emitted(self, case_id: UUID, at: datetime) -> None:
        self.cases[case_id].rescreen_emitted_at = at

    async def rescreen_now(self, case_id: UUID, at: datetime) -> None:
        case = self.cases[case_id]
        if case.closed in (None, CloseReason.SUPPORT_IN_PLACE):
            case.rescreen_due_at, case.rescreen_emitted_at = at, None

    async def close_case(self, case_id: UUID, at: datetime, reason: CloseReason, *, stop_rescreens: bool) -> None:
        case = self.cases[case_id]
        case.closed = reason
        if stop_rescreens:
            case.rescreen_due_at = None

    async def erase_caregiver(self, pseudonym: str) -> int:
        gone = [c.id for c in self.cases.values() if c.pseudonym == pseudonym]
        for case_id in gone:
            del self.cases[case_id]
        return len(gone)

    async def withdraw_signals(self, signal_ids: list[UUID]) -> list[UUID]:
        kept = []
        for case in list(self.cases.values()):
            case.screenings = [s for s in case.screenings if s.signal_id not in signal_ids]
            if not case.screenings:
                del self.cases[case.id]
            else:
                kept.append(case.id)
        return kept


class FakeScreeningUnitOfWork(FakeUnitOfWork):
    topic, producer = service.ScreeningUnitOfWork.topic, service.ScreeningUnitOfWork.producer

    def __init__(self) -> None:
        super().__init__()
        self.cases = FakeCases()


@pytest.fixture
def uow() -> FakeScreeningUnitOfWork:
    return FakeScreeningUnitOfWork()


@pytest.fixture
def screener() -> Screener:
    return Screener(merge_window=timedelta(days=180), metrics=ScreeningMetrics(CollectorRegistry()))


def erased(scope: ErasureScope, signal_ids: list[UUID]) -> CaregiverErased:
    return CaregiverErased(
        erasure_id=uuid.uuid4(),
        caregiver_pseudonym=PERSON,
        signal_ids=signal_ids,
        requested_at=NOW,
        requested_by=uuid.uuid4(),
        scope=scope,
    )


async def screen(uow: Any, screener: Screener, signal: SignalReceived, now: datetime = NOW) -> None:
    cause = new_event(EventType.SIGNAL_RECEIVED, signal, producer="signals", subject=PERSON, correlation_id="corr-1")
    await service.screen_signal(uow, screener, signal, cause, now)


async def test_a_screened_signal_opens_a_case_and_publishes_its_judgement(uow, screener):
    signal = make_signal()
    await screen(uow, screener, signal)

    [case] = uow.cases.cases.values()
    assert [s.signal_id for s in case.screenings] == [signal.signal_id]
    [screened] = uow.events(Topics.SCREENING)[:1]
    assert screened.event_type == EventType.SIGNAL_SCREENED
    assert screened.payload.case_id == case.id and screened.payload.signal_id == signal.signal_id
    assert screened.subject == PERSON and screened.correlation_id == "corr-1"
    # Later stages get the slim signal (not the recipient's condition), with its target group.
    assert screened.payload.signal.care_recipient.condition is None
    assert screened.payload.result.recipient_groups == ["dementia"]
    assert case.rescreen_due_at is not None and case.rescreen_due_at > NOW


async def test_a_second_source_joins_the_case_and_corroboration_escalates_once(uow, screener):
    await screen(uow, screener, calm(instrument={"id": "ediz_plus", "answers": [1] * 5 + [0] * 10}))
    at_risk = make_signal(organisation_id=uuid.uuid4(), source={"kind": "home_care", "reference": "x"})
    await screen(uow, screener, at_risk, NOW + timedelta(days=1))
    await screen(
        uow, screener, make_signal(organisation_id=uuid.uuid4(), source={"kind": "resident"}), NOW + timedelta(days=2)
    )

    assert len(uow.cases.cases) == 1
    kinds = [e.event_type for e in uow.events(Topics.SCREENING)]
    assert kinds.count(EventType.SIGNAL_SCREENED) == 3
    assert kinds.count(EventType.CASE_ESCALATED) == 1, kinds


async def test_every_crisis_signal_escalates_again(uow, screener):
    crisis = {"observations": ["exhaustion"], "urgency": "crisis"}
    await screen(uow, screener, make_signal(**crisis))
    await screen(uow, screener, make_signal(**crisis), NOW + timedelta(hours=1))
    escalations = [e for e in uow.events() if e.event_type == EventType.CASE_ESCALATED]
    assert len(escalations) == 2 and all(e.payload.risk_level is RiskLevel.CRISIS for e in escalations)


async def test_a_signal_the_domain_cannot_screen_is_a_permanent_error(uow, screener):
    broken = make_signal(instrument={"id": "no_such_instrument", "answers": [1]})
    with pytest.raises(PermanentError):
        await screen(uow, screener, broken)
    assert uow.published == [] and uow.cases.cases == {}


async def test_closing_stops_rescreens_unless_support_is_in_place(uow, screener):
    await screen(uow, screener, make_signal())
    [case] = uow.cases.cases.values()
    due = case.rescreen_due_at
    await service.close_case(
        uow,
        CaseClosed(
            case_id=case.id,
            closed_at=NOW,
            reason=CloseReason.SUPPORT_IN_PLACE,
            signal_ids=[],
            municipality_code="GM0327",
        ),
    )
    assert case.rescreen_due_at == due
    await service.close_case(
        uow,
        CaseClosed(
            case_id=case.id, closed_at=NOW, reason=CloseReason.DECEASED, signal_ids=[], municipality_code="GM0327"
        ),
    )
    assert case.rescreen_due_at is None


async def test_support_that_did_not_arrive_makes_the_rescreen_due_now(uow, screener):
    await screen(uow, screener, make_signal())
    [case] = uow.cases.cases.values()
    await service.record_follow_up(uow, case.id, support_arrived=True, now=NOW)
    assert case.rescreen_due_at != NOW
    await service.record_follow_up(uow, case.id, support_arrived=False, now=NOW)
    assert case.rescreen_due_at == NOW


async def test_due_rescreens_are_published_once(uow, screener):
    signal = make_signal()
    await screen(uow, screener, signal)
    [case] = uow.cases.cases.values()
    later = case.rescreen_due_at + timedelta(minutes=1)
    assert await service.emit_due_rescreens(uow, NOW) == 0
    assert await service.emit_due_rescreens(uow, later) == 1
    assert await service.emit_due_rescreens(uow, later) == 0
    [due] = [e for e in uow.events() if e.event_type == EventType.RESCREEN_DUE]
    assert (due.payload.case_id, due.payload.last_signal_id, due.subject) == (case.id, signal.signal_id, PERSON)


async def test_withdrawing_a_signal_rejudges_the_case_without_it(uow, screener):
    crisis = make_signal(observations=["exhaustion"], urgency="crisis")
    other = calm(organisation_id=uuid.uuid4(), source={"kind": "home_care", "reference": "x"})
    await screen(uow, screener, crisis)
    await screen(uow, screener, other, NOW + timedelta(hours=1))
    [case] = uow.cases.cases.values()
    assert case.judged.risk_level is RiskLevel.CRISIS
    erasure = erased(ErasureScope.SIGNALS, [crisis.signal_id])
    await service.erase(uow, erasure)
    assert case.judged.risk_level is not RiskLevel.CRISIS
    assert uow.tombstones == [erasure] and uow.forgotten == [erasure]


async def test_erasing_the_caregiver_deletes_the_case_after_the_tombstone(uow, screener):
    await screen(uow, screener, make_signal())
    erasure = erased(ErasureScope.CAREGIVER, [])
    await service.erase(uow, erasure)
    assert uow.cases.cases == {} and uow.tombstones == [erasure] and uow.forgotten == [erasure]
