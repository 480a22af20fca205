"""Matching's use cases over an in-memory social map: which places are held, what is published."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from prometheus_client import CollectorRegistry

from services.matching import domain, service
from services.matching.domain import Candidate
from services.matching.metrics import MatchingMetrics
from services.matching.service import Matcher
from services.screening.domain import assess
from shared.consumer import PermanentError
from shared.contracts import (
    CaregiverErased,
    EventType,
    ReferralStatus,
    ReferralUpdated,
    SignalScreened,
    Topics,
)
from shared.instruments import load_catalogue
from shared.outbox import new_event
from shared.sealing import slim
from tests.fakes import FakeUnitOfWork
from tests.unit.test_matching_domain import cand
from tests.unit.test_screening_domain import make_signal

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CASE = uuid.uuid4()


class FakeSocialMap:
    """The social-map repository's contract for matching, in memory: places per service."""

    def __init__(self, candidates: list[Candidate]) -> None:
        self.candidates = candidates
        # None: the service publishes no capacity, and a hold takes no counted place.
        self.places = {c.service_id: c.capacity_available for c in candidates}
        self.holds: dict[UUID, tuple[str, UUID, str]] = {}  # id -> (service, case, status)

    async def load_candidates(self, municipality_code: str, pc4: str | None) -> list[Candidate]:
        return [c for c in self.candidates if municipality_code in c.municipality_codes]

    async def reserve(self, service_id: str, case_id: UUID, hold_minutes: int) -> UUID | None:
        places = self.places[service_id]
        if places is not None and places < 1:
            return None
        if places is not None:
            self.places[service_id] = places - 1
        hold = uuid.uuid4()
        self.holds[hold] = (service_id, case_id, "held")
        return hold

    async def _end(self, reservation_id: UUID, status: str) -> bool:
        service_id, case_id, now = self.holds[reservation_id]
        if now != "held":
            return False
        self.holds[reservation_id] = (service_id, case_id, status)
        return True

    async def confirm(self, reservation_id: UUID) -> bool:
        return await self._end(reservation_id, "confirmed")

    async def release(self, reservation_id: UUID) -> bool:
        released = await self._end(reservation_id, "released")
        service_id = self.holds[reservation_id][0]
        if released and self.places[service_id] is not None:
            self.places[service_id] += 1
        return released

    async def proposed_for(self, case_id: UUID) -> frozenset[str]:
        return frozenset(s for s, c, _ in self.holds.values() if c == case_id)

    def status(self, reservation_id: UUID) -> str:
        return self.holds[reservation_id][2]


class FakeMatchingUnitOfWork(FakeUnitOfWork):
    topic, producer = service.MatchingUnitOfWork.topic, service.MatchingUnitOfWork.producer

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__()
        self.social_map = FakeSocialMap(candidates)


# The consultant has no place to hold: only a case that needs a person gets them.
MAP = [
    cand("respite-a", capacity_available=1),
    cand("respite-b", capacity_available=2),
    cand("respite-c", capacity_available=0),
    cand("consultant", terms=frozenset({domain.CONSULTANT}), capacity_available=0),
]


@pytest.fixture
def matcher() -> Matcher:
    return Matcher(max_proposals=3, hold_minutes=60, metrics=MatchingMetrics(CollectorRegistry()))


def screened(*, escalated: bool = False) -> SignalScreened:
    signal = make_signal()
    return SignalScreened(
        signal_id=signal.signal_id,
        case_id=CASE,
        screened_at=NOW,
        escalated=escalated,
        result=assess(signal, load_catalogue()),
        signal=slim(signal),
    )


async def propose(uow: Any, matcher: Matcher, payload: SignalScreened, **options: Any) -> None:
    cause = new_event(EventType.SIGNAL_SCREENED, payload, producer="screening", subject="p", correlation_id="c")
    await service.propose(uow, matcher, payload, cause, NOW, **options)


async def test_each_proposal_holds_a_place_and_only_services_with_one_are_proposed(matcher):
    uow = FakeMatchingUnitOfWork(MAP)
    await propose(uow, matcher, screened())
    [proposed] = uow.events(Topics.MATCHING)
    assert proposed.event_type == EventType.MATCHES_PROPOSED and proposed.subject == "p"
    matches = proposed.payload.matches
    assert {m.service_id for m in matches} == {"respite-a", "respite-b"}
    assert all(uow.social_map.status(m.reservation_id) == "held" for m in matches)
    assert uow.social_map.places == {"respite-a": 0, "respite-b": 1, "respite-c": 0, "consultant": 0}
    assert proposed.payload.no_match_reason is None


async def test_an_escalated_case_gets_the_caregiver_consultant_too(matcher):
    uow = FakeMatchingUnitOfWork(MAP)
    await propose(uow, matcher, screened(escalated=True))
    matches = uow.events()[0].payload.matches
    assert [m.service_id for m in matches if m.consultant] == ["consultant"] and len(matches) == 3


async def test_no_place_left_means_no_capacity_and_the_consultant(matcher):
    uow = FakeMatchingUnitOfWork([replace(c, capacity_available=1) for c in MAP])
    uow.social_map.places = dict.fromkeys(uow.social_map.places, 0)  # taken since they were read
    await propose(uow, matcher, screened())
    payload = uow.events()[0].payload
    assert [m.service_id for m in payload.matches] == ["consultant"]
    assert payload.no_match_reason == domain.NO_CAPACITY


def update(status: ReferralStatus, reservation_id: UUID | None, **changes: Any) -> ReferralUpdated:
    base = screened()
    return ReferralUpdated(
        signal_id=base.signal_id,
        case_id=CASE,
        referral_id=uuid.uuid4(),
        service_id="respite-a",
        service_name="Service respite-a",
        status=status,
        updated_at=NOW,
        updated_by="provider",
        reservation_id=reservation_id,
        signal=base.signal,
        result=base.result,
        **changes,
    )


async def record(uow: Any, matcher: Matcher, change: ReferralUpdated) -> None:
    cause = new_event(EventType.REFERRAL_UPDATED, change, producer="notify", subject="p", correlation_id="c")
    await service.record_referral_update(uow, matcher, change, cause, NOW)


async def test_an_accepted_referral_takes_the_place_for_good(matcher):
    uow = FakeMatchingUnitOfWork(MAP)
    hold = await uow.social_map.reserve("respite-a", CASE, 60)
    await record(uow, matcher, update(ReferralStatus.ACCEPTED, hold))
    assert uow.social_map.status(hold) == "confirmed" and uow.published == []


async def test_a_cancelled_referral_gives_the_place_back_without_matching_again(matcher):
    uow = FakeMatchingUnitOfWork(MAP)
    hold = await uow.social_map.reserve("respite-a", CASE, 60)
    await record(uow, matcher, update(ReferralStatus.CANCELLED, hold))
    assert uow.social_map.status(hold) == "released" and uow.social_map.places["respite-a"] == 1
    assert uow.published == []


async def test_a_declined_referral_is_matched_again_past_every_service_tried(matcher):
    # respite-a, with the most places, would rank first again.
    uow = FakeMatchingUnitOfWork([cand("respite-a", capacity_available=5), cand("respite-b", capacity_available=1)])
    hold = await uow.social_map.reserve("respite-a", CASE, 60)
    await record(uow, matcher, update(ReferralStatus.REJECTED, hold))
    assert uow.social_map.status(hold) == "released"
    [again] = uow.events(Topics.MATCHING)
    assert [m.service_id for m in again.payload.matches] == ["respite-b"]  # one, and not respite-a again


async def test_a_decline_without_the_signal_cannot_be_matched_again(matcher):
    uow = FakeMatchingUnitOfWork(MAP)
    with pytest.raises(PermanentError):
        await record(uow, matcher, update(ReferralStatus.REJECTED, None).model_copy(update={"signal": None}))


async def test_an_erasure_leaves_a_tombstone_and_forgets_retained_events():
    uow = FakeMatchingUnitOfWork(MAP)
    erased = CaregiverErased(
        erasure_id=uuid.uuid4(), caregiver_pseudonym="p", signal_ids=[], requested_at=NOW, requested_by=uuid.uuid4()
    )
    await service.erase(uow, erased)
    assert uow.tombstones == [erased] and uow.forgotten == [erased]
