"""The municipalities' use cases over an in-memory store: what waits, what is released, what goes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from services.municipalities import records, service
from services.municipalities.domain import Record, Webhook
from services.municipalities.service import ReleasePolicy
from shared.contracts import CaregiverErased, ErasureScope
from tests.fakes import FakeUnitOfWork

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = ReleasePolicy(k=3, max_delay=timedelta(hours=1), producer="municipalities")


class FakeStore:
    """The municipalities store's contract, in memory."""

    def __init__(self) -> None:
        self.waiting: dict[int, Record] = {}
        self.streams: dict[str, list[tuple[int, str, str, datetime]]] = {}  # code -> (seq, month, body, at)
        self.hooks: dict[UUID, tuple[str, Webhook]] = {}
        self.locked_elsewhere = False

    async def try_release_lock(self) -> bool:
        return not self.locked_elsewhere

    async def add_waiting(self, record: Record) -> None:
        self.waiting[len(self.waiting) + 1000] = record

    async def waiting_for_update(self) -> list[tuple[int, Record]]:
        return list(self.waiting.items())

    async def delete_waiting(self, ids: list[int]) -> None:
        for row_id in ids:
            del self.waiting[row_id]

    async def forget_person(self, person: str) -> int:
        gone = [row_id for row_id, r in self.waiting.items() if r.person == person]
        await self.delete_waiting(gone)
        return len(gone)

    async def append_release(self, code: str, event_id: UUID, month: str, body: str, released_at: datetime) -> int:
        stream = self.streams.setdefault(code, [])
        stream.append((len(stream) + 1, month, body, released_at))
        return len(stream)

    async def last_seq_before(self, code: str, moment: datetime | None) -> int:
        stream = self.streams.get(code, [])
        return max((seq for seq, _, _, at in stream if moment is None or at < moment), default=0)

    async def released_in(self, code: str, months: list[str]) -> list[dict[str, Any]]:
        return [{"month": month, "body": body} for _, month, body, _ in self.streams.get(code, []) if month in months]

    async def add_webhook(self, code: str, url: str, secret: str, delivered_seq: int) -> Webhook:
        hook = Webhook(uuid.uuid4(), url, delivered_seq, 0, None, NOW)
        self.hooks[hook.id] = (code, hook)
        return hook

    async def webhooks_of(self, code: str) -> list[Webhook]:
        return [hook for owner, hook in self.hooks.values() if owner == code]

    async def delete_webhook(self, code: str, webhook_id: UUID) -> bool:
        if self.hooks.get(webhook_id, ("", None))[0] != code:
            return False
        del self.hooks[webhook_id]
        return True


class FakeMunicipalitiesUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.store = FakeStore()


@pytest.fixture
def uow() -> FakeMunicipalitiesUnitOfWork:
    return FakeMunicipalitiesUnitOfWork()


def record(pseudonym: str, code: str = "GM0327", arrived: datetime = NOW) -> Record:
    return Record(
        person=records.person_token(code, pseudonym),
        arrived=arrived,
        kind="signal.screened",
        municipality_code=code,
        month="2026-11",
        week="2026-W48",
        risk_level="at_risk",
    )


async def test_a_record_waits_unless_there_is_none_or_its_municipality_is_not_served(uow):
    assert await service.keep_record(uow, record("a")) is True
    assert await service.keep_record(uow, None) is False
    assert await service.keep_record(uow, record("b", code="GM0344")) is False  # Utrecht: not served here
    assert [r.municipality_code for r in uow.store.waiting.values()] == ["GM0327"]


async def test_groups_of_k_persons_are_released_to_stream_and_outbox_and_the_rest_waits(uow):
    for name in ("a", "b", "c"):
        await service.keep_record(uow, record(name))
    await service.keep_record(uow, record("d", code="GM0313"))
    outcome = await service.release_due(uow, POLICY, NOW)
    assert [g.count for g in outcome.released] == [3]
    [(topic, envelope)] = uow.published
    assert topic == "municipality.GM0327.events.v1" and envelope.subject == "GM0327"
    [(seq, month, body, _)] = uow.store.streams["GM0327"]
    assert (seq, month, body) == (1, "2026-11", envelope.model_dump_json())
    assert [r.municipality_code for r in uow.store.waiting.values()] == ["GM0313"]

    # Its delay run out, the lone record is suppressed: never released, and gone.
    later = await service.release_due(uow, POLICY, NOW + timedelta(hours=2))
    assert not later.released and len(later.suppressed) == 1 and uow.store.waiting == {}
    assert len(uow.published) == 1


async def test_nothing_is_released_while_another_replica_releases(uow):
    for name in ("a", "b", "c"):
        await service.keep_record(uow, record(name))
    uow.store.locked_elsewhere = True
    assert not (await service.release_due(uow, POLICY, NOW)).released
    assert uow.published == [] and len(uow.store.waiting) == 3


def erasure(pseudonym: str, scope: ErasureScope = ErasureScope.CAREGIVER) -> CaregiverErased:
    return CaregiverErased(
        erasure_id=uuid.uuid4(),
        caregiver_pseudonym=pseudonym,
        signal_ids=[uuid.uuid4()],
        requested_at=NOW,
        requested_by=uuid.uuid4(),
        scope=scope,
    )


async def test_an_erased_caregivers_waiting_records_go_in_every_municipality(uow):
    for code in ("GM0327", "GM0313"):
        await service.keep_record(uow, record("erased", code=code))
    await service.keep_record(uow, record("other"))
    erased = erasure("erased")
    await service.erase(uow, erased)
    assert [r.person for r in uow.store.waiting.values()] == [records.person_token("GM0327", "other")]
    assert uow.tombstones == [erased]


async def test_a_withdrawal_of_signals_keeps_the_anonymous_records_but_leaves_a_tombstone(uow):
    await service.keep_record(uow, record("p"))
    withdrawal = erasure("p", ErasureScope.SIGNALS)
    await service.erase(uow, withdrawal)
    assert len(uow.store.waiting) == 1 and uow.tombstones == [withdrawal]


async def test_a_webhook_starts_at_the_cursor_of_its_since_day_and_only_its_municipality_deletes_it(uow):
    await uow.store.append_release("GM0327", uuid.uuid4(), "2026-11", "{}", NOW - timedelta(days=3))
    await uow.store.append_release("GM0327", uuid.uuid4(), "2026-11", "{}", NOW - timedelta(hours=1))
    replaying = await service.add_webhook(uow, "GM0327", "https://a.example/hook", "s" * 16, NOW - timedelta(days=1))
    new_only = await service.add_webhook(uow, "GM0327", "https://b.example/hook", "s" * 16, None)
    assert (replaying.delivered_seq, new_only.delivered_seq) == (1, 2)
    assert await service.delete_webhook(uow, "GM0307", replaying.id) is False
    assert await service.delete_webhook(uow, "GM0327", replaying.id) is True
    assert [h.url for h in await service.webhooks(uow, "GM0327")] == ["https://b.example/hook"]


async def test_a_stream_resumes_after_the_last_event_id_before_its_since_day(uow):
    await uow.store.append_release("GM0327", uuid.uuid4(), "2026-11", "{}", NOW - timedelta(days=3))
    assert await service.stream_cursor(uow, "GM0327", 7, NOW - timedelta(days=5)) == 7
    assert await service.stream_cursor(uow, "GM0327", None, NOW - timedelta(days=5)) == 0
    assert await service.stream_cursor(uow, "GM0327", None, None) == 1


async def test_only_closed_months_are_gathered_the_open_ones_are_named(uow):
    await uow.store.append_release("GM0327", uuid.uuid4(), "2026-10", "october", NOW)
    await uow.store.append_release("GM0327", uuid.uuid4(), "2026-11", "november", NOW)
    by_month, still_open = await service.closed_months(
        uow, "GM0327", [date(2026, 10, 1), date(2026, 11, 1)], NOW, timedelta(days=7)
    )
    assert [g["body"] for g in by_month["2026-10"]] == ["october"]
    assert still_open == ["2026-11"]
