"""Notify's use cases over in-memory repositories: proposals become referrals, messages and a
follow-up once, a provider's answer moves the referral and is announced, an erasure ends the
open referrals and blanks the caregiver, and the caregiver's first answer counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from services.notify import service
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.domain import FollowUp, HistoryEntry, Notification, Referral, Referrer
from services.notify.repository import NotifyUnitOfWork
from shared.contracts import (
    CaregiverErased,
    Envelope,
    EventType,
    MatchesProposed,
    ReferralStatus,
    RejectionReason,
    ScreeningResult,
    SignalReceived,
    Topics,
)
from shared.outbox import new_event
from tests.fakes import FakeUnitOfWork
from tests.unit.test_notify_domain import match, proposed

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


def payloads(uow: FakeUnitOfWork, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the ``event_type`` events ``uow`` published, as they travel (JSON)."""
    assert {topic for topic, _ in uow.published} <= {Topics.NOTIFY}, "notify publishes on its own topic only"
    return [e.payload.model_dump(mode="json") for e in uow.events() if e.event_type == event_type]


class Notifications:
    def __init__(self) -> None:
        self.stored: dict[str, Notification] = {}
        self.erased: list[tuple[list[UUID], list[UUID]]] = []

    async def add(self, message: Notification) -> bool:
        return self.stored.setdefault(message.dedupe_key, message) is message

    async def is_do_not_contact(self, address_digest: str) -> bool:
        return False

    async def erase(self, signal_ids: list[UUID], case_ids: list[UUID]) -> None:
        self.erased.append((list(signal_ids), list(case_ids)))


class Referrals:
    def __init__(self) -> None:
        self.rows: dict[UUID, Referral] = {}
        self.histories: dict[UUID, list[HistoryEntry]] = {}

    async def add(self, row: dict[str, Any]) -> tuple[UUID, bool]:
        for referral in self.rows.values():
            if (referral.case_id, referral.service_id) == (row["case_id"], row["service_id"]):
                return referral.id, False
        self.rows[row["id"]] = Referral(
            **row
            | {"signal": SignalReceived.model_validate(row["signal"]), "result": ScreeningResult(**row["result"])},
            status=ReferralStatus.REQUESTED,
            reason_code=None,
            note=None,
            reminded_at=None,
            escalated_at=None,
        )
        return row["id"], True

    async def get(self, referral_id: UUID, *, lock: bool = False) -> Referral | None:
        return self.rows.get(referral_id)

    async def set_status(self, referral_id: UUID, change: HistoryEntry) -> Referral:
        await self.add_history(referral_id, change)
        updated = replace(
            self.rows[referral_id], status=change.status, reason_code=change.reason_code, updated_at=change.at
        )
        self.rows[referral_id] = updated
        return updated

    async def add_history(self, referral_id: UUID, entry: HistoryEntry) -> None:
        self.histories.setdefault(referral_id, []).append(entry)

    async def rejected_service_ids(self, case_id: UUID) -> list[str]:
        return sorted(
            r.service_id for r in self.rows.values() if r.case_id == case_id and r.status is ReferralStatus.REJECTED
        )

    async def was_rejected_before(self, signal_id: UUID) -> bool:
        return any(r.signal_id == signal_id and r.status is ReferralStatus.REJECTED for r in self.rows.values())

    async def open_of(self, signal_ids: list[UUID], case_ids: list[UUID]) -> list[Referral]:
        return [
            r
            for r in self.rows.values()
            if (r.signal_id in signal_ids or r.case_id in case_ids) and r.status is ReferralStatus.REQUESTED
        ]

    async def erase(self, signal_ids: list[UUID], case_ids: list[UUID]) -> None:
        for key, r in self.rows.items():
            if r.signal_id in signal_ids or r.case_id in case_ids:
                self.rows[key] = replace(r, signal=None, result=None, note=None, subject_key="erased")


class Contacts:
    def __init__(self) -> None:
        self.consultants: dict[str, str] = {}

    async def partner(self, organisation_id: UUID) -> Referrer | None:
        return None

    async def save_consultant(self, municipality_code: str, email: str, name: str | None, source: str) -> None:
        self.consultants.setdefault(municipality_code, email)


class FollowUps:
    def __init__(self) -> None:
        self.rows: dict[UUID, FollowUp] = {}

    async def schedule(self, row: dict[str, Any]) -> None:
        if all(f.case_id != row["case_id"] for f in self.rows.values()):
            signal = SignalReceived.model_validate(row["signal"])
            self.rows[row["id"]] = FollowUp(
                **row | {"signal": signal}, status="scheduled", asked_at=None, answered_at=None, support_arrived=None
            )

    async def get(self, follow_up_id: UUID, *, lock: bool = False) -> FollowUp | None:
        return self.rows.get(follow_up_id)

    async def record_answer(self, follow_up_id: UUID, support_arrived: bool, at: datetime) -> None:
        self.rows[follow_up_id] = replace(
            self.rows[follow_up_id], status="answered", support_arrived=support_arrived, answered_at=at
        )

    async def erase(self, signal_ids: list[UUID], case_ids: list[UUID]) -> None:
        pass


class FakeNotifyUnitOfWork(FakeUnitOfWork):
    topic, producer = NotifyUnitOfWork.topic, NotifyUnitOfWork.producer

    def __init__(self) -> None:
        super().__init__()
        self.notifications = Notifications()
        self.referrals = Referrals()
        self.contacts = Contacts()
        self.follow_ups = FollowUps()
        self.access: list[tuple[str, str, str]] = []

    async def log_access(self, actor: Any, action: Any, subject_type: str, subject_id: Any, *, outcome: str = "ok"):
        self.access.append((str(action), subject_type, outcome))

    async def erase(self, signal_ids: list[UUID], case_ids: list[UUID]) -> None:
        for table in (self.notifications, self.referrals, self.follow_ups):
            await table.erase(signal_ids, case_ids)


def context() -> NotifyContext:
    return NotifyContext.create(NotifySettings(public_url="http://notify.test"), Clock())


def envelope(payload: Any, event_type: str) -> Envelope[Any]:
    return new_event(event_type, payload, producer="test", subject="pseudonym-1", correlation_id="corr-1")


def proposal(**changes: Any) -> MatchesProposed:
    return proposed(matches=[match("a", contact_email="a@provider.example.nl")], **changes)


async def proposed_to(uow: FakeNotifyUnitOfWork, ctx: NotifyContext) -> Referral:
    await service.propose(uow, ctx, envelope(proposal(), EventType.MATCHES_PROPOSED))
    [referral] = uow.referrals.rows.values()
    return referral


async def test_a_proposal_makes_its_referral_messages_and_follow_up_once():
    uow, ctx = FakeNotifyUnitOfWork(), context()
    referral = await proposed_to(uow, ctx)
    assert referral.status is ReferralStatus.REQUESTED and referral.signal is not None
    assert [h.status for h in uow.referrals.histories[referral.id]] == [ReferralStatus.REQUESTED]
    messages = dict(uow.notifications.stored)
    assert {m.recipient_role for m in messages.values()} >= {"caregiver", "referrer", "provider"}
    assert len(uow.follow_ups.rows) == 1

    redelivered = proposal(case_id=referral.case_id, signal_id=referral.signal_id)
    await service.propose(uow, ctx, envelope(redelivered, EventType.MATCHES_PROPOSED))
    assert len(uow.referrals.rows) == 1 and len(uow.follow_ups.rows) == 1, "the case's open referral is reused"


async def test_a_providers_answer_moves_the_referral_once_and_is_announced():
    uow, ctx = FakeNotifyUnitOfWork(), context()
    referral = await proposed_to(uow, ctx)
    declined = await service.answer_referral(uow, ctx, referral.id, False, RejectionReason.NO_CAPACITY, None)
    assert declined.changed and declined.after is not None and declined.after.status is ReferralStatus.REJECTED
    [update] = payloads(uow, EventType.REFERRAL_UPDATED)
    assert (update["status"], update["reason_code"], update["updated_by"]) == ("rejected", "no_capacity", "provider")
    assert update["excluded_service_ids"] == ["a"]

    again = await service.answer_referral(uow, ctx, referral.id, False, RejectionReason.NO_CAPACITY, None)
    assert not again.changed and len(payloads(uow, EventType.REFERRAL_UPDATED)) == 1
    assert (await service.answer_referral(uow, ctx, referral.id, True, None, None)).illegal
    assert (await service.answer_referral(uow, ctx, uuid4(), True, None, None)).before is None


async def test_an_erasure_ends_the_open_referrals_without_personal_data_and_blanks_the_rest():
    uow, ctx = FakeNotifyUnitOfWork(), context()
    referral = await proposed_to(uow, ctx)
    erased = CaregiverErased(
        erasure_id=uuid4(),
        caregiver_pseudonym="pseudonym-1",
        signal_ids=[referral.signal_id],
        case_ids=[referral.case_id],
        requested_at=NOW,
        requested_by=referral.organisation_id,
    )
    await service.forget_caregiver(uow, ctx, envelope(erased, EventType.CAREGIVER_ERASED))
    [update] = payloads(uow, EventType.REFERRAL_UPDATED)
    assert update["status"] == "cancelled" and update["signal"] is None and update["result"] is None
    assert uow.referrals.rows[referral.id].signal is None
    assert uow.notifications.erased == [([referral.signal_id], [referral.case_id])]
    assert uow.tombstones == [erased] and uow.forgotten == [erased]


async def test_the_caregivers_first_answer_counts():
    uow, ctx = FakeNotifyUnitOfWork(), context()
    await proposed_to(uow, ctx)
    [follow_up] = uow.follow_ups.rows.values()
    first = await service.answer_follow_up(uow, ctx, follow_up.id, False)
    second = await service.answer_follow_up(uow, ctx, follow_up.id, True)
    assert first is not None and second is not None and (first.recorded, second.recorded) == (False, False)
    assert [p["support_arrived"] for p in payloads(uow, EventType.FOLLOW_UP_RECORDED)] == [False]
    assert await service.answer_follow_up(uow, ctx, uuid4(), True) is None
    assert uow.access[-1] == ("update", "follow_up", "not_found")
