"""The consultant's use cases against an in-memory unit of work: closing a case tells only the
partners' referrers and queues one event; a case of another municipality is not there for
this consultant; an erasure of the person forgets their cases (the SQL is covered end to end)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.casework import service
from services.casework.config import CaseworkSettings
from services.casework.domain import Case, CaseReferral, CaseSignal, Consultant
from shared.contracts import (
    CaregiverErased,
    ErasureScope,
    EventType,
    SignalReceived,
    Topics,
)
from tests.fakes import FakeUnitOfWork

DEMO = json.loads((Path(__file__).parents[2] / "deploy" / "demo" / "signal.json").read_text())
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
SETTINGS = CaseworkSettings()
CONSULTANT = Consultant(id=uuid.uuid4(), name="Fatima", email="fatima@example.nl", municipality_code="GM0327")


def _signal(organisation_id: UUID) -> CaseSignal:
    signal = SignalReceived(
        signal_id=uuid.uuid4(), organisation_id=organisation_id, organisation_name="Org", received_at=NOW, **DEMO
    )
    return CaseSignal(
        signal_id=signal.signal_id,
        case_id=uuid.uuid4(),
        received_at=NOW,
        organisation_name="Org",
        source_kind=signal.source.kind.value,
        urgency=signal.urgency.value,
        observations=[],
        consent=signal.consent.model_dump(mode="json"),
        personal=signal.model_dump(mode="json"),
    )


class FakeCases:
    def __init__(self) -> None:
        self.cases: dict[UUID, Case] = {}
        self.signal_rows: dict[UUID, list[CaseSignal]] = {}
        self.events: list[tuple[UUID, str]] = []
        self.access: list[tuple[str, UUID | None]] = []
        self.erased: list[tuple[Sequence[UUID], Sequence[UUID], bool]] = []

    def add(self, municipality_code: str, *signals: CaseSignal) -> UUID:
        case_id = uuid.uuid4()
        self.cases[case_id] = Case(
            id=case_id,
            subject="p1",
            municipality_code=municipality_code,
            created_at=NOW,
            updated_at=NOW,
            contact_preference="email",
            escalated_at=NOW,
            unmatched=True,
        )
        self.signal_rows[case_id] = [dataclasses.replace(s, case_id=case_id) for s in signals]
        return case_id

    async def case(self, case_id: UUID, *, lock: bool = False) -> Case | None:
        return self.cases.get(case_id)

    async def referrals(self, case_ids: Sequence[UUID]) -> list[CaseReferral]:
        return []

    async def covered_municipalities(self) -> list[str]:
        return ["GM0327", "GM0307"]

    async def regions(self) -> dict[str, list[str]]:
        return {}

    async def signals(self, case_id: UUID) -> list[CaseSignal]:
        return self.signal_rows[case_id]

    async def update_case(self, case_id: UUID, now: datetime, **fields: Any) -> None:
        self.cases[case_id] = dataclasses.replace(self.cases[case_id], updated_at=now, **fields)

    async def add_event(self, case_id: UUID, at: datetime, kind: str, *_: Any, **__: Any) -> None:
        self.events.append((case_id, kind))

    async def log_access(self, consultant_id: UUID, action: str, case_id: UUID | None = None) -> None:
        self.access.append((action, case_id))

    async def erase(self, signal_ids: Sequence[UUID], case_ids: Sequence[UUID], *, whole_cases: bool) -> None:
        self.erased.append((signal_ids, case_ids, whole_cases))


class FakeCaseworkUnitOfWork(FakeUnitOfWork):
    topic, producer = service.CaseworkUnitOfWork.topic, service.CaseworkUnitOfWork.producer

    def __init__(self) -> None:
        super().__init__()
        self.cases = FakeCases()


async def test_closing_tells_only_the_partners_signals_and_queues_one_event() -> None:
    uow = FakeCaseworkUnitOfWork()
    partner, own = _signal(uuid.uuid4()), _signal(service.CASEWORK_ORGANISATION)
    case_id = uow.cases.add("GM0327", partner, own)
    await service.close(uow, SETTINGS, CONSULTANT, case_id, "support_in_place", NOW)
    [event] = uow.events(Topics.CASEWORK)
    assert event.event_type == EventType.CASE_CLOSED and event.payload.signal_ids == [partner.signal_id]
    assert uow.cases.cases[case_id].closed_at == NOW and uow.cases.access == [("close_case", case_id)]
    with pytest.raises(service.Refused) as again:
        await service.close(uow, SETTINGS, CONSULTANT, case_id, "support_in_place", NOW)
    assert again.value.status == 409 and len(uow.events()) == 1


async def test_a_case_of_another_municipality_is_not_there_for_this_consultant() -> None:
    uow = FakeCaseworkUnitOfWork()
    case_id = uow.cases.add("GM0307", _signal(uuid.uuid4()))
    with pytest.raises(service.Refused) as refused:
        await service.add_note(uow, SETTINGS, CONSULTANT, case_id, "gebeld", NOW)
    assert refused.value.status == 404 and uow.cases.events == [] and uow.cases.access == []


async def test_an_unknown_close_reason_is_refused_naming_the_field_before_anything_is_read() -> None:
    uow = FakeCaseworkUnitOfWork()
    with pytest.raises(service.Refused, match=r"^reason:"):
        await service.close(uow, SETTINGS, CONSULTANT, uuid.uuid4(), "bored", NOW)


async def test_erasing_the_person_forgets_their_cases_and_a_withdrawal_only_the_signals() -> None:
    uow = FakeCaseworkUnitOfWork()
    signal_id, case_id = uuid.uuid4(), uuid.uuid4()
    for scope in (ErasureScope.CAREGIVER, ErasureScope.SIGNALS):
        erased = CaregiverErased(
            erasure_id=uuid.uuid4(),
            caregiver_pseudonym="p1",
            signal_ids=[signal_id],
            case_ids=[case_id],
            requested_at=NOW,
            requested_by=uuid.uuid4(),
            scope=scope,
        )
        await service.caregiver_erased(uow, erased)
    assert [whole for *_, whole in uow.cases.erased] == [True, False]
    assert len(uow.tombstones) == 2 and len(uow.forgotten) == 2
