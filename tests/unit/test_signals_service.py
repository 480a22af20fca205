"""The signals use cases' orchestration against an in-memory unit of work: intake with its
idempotency key, the erasure's scopes and refusals, and the stages of the status view (the
SQL itself is covered by the integration and end-to-end tests)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.signals import domain, service
from services.signals.config import SignalsSettings
from services.signals.domain import (
    ErasureRecord,
    Organisation,
    Requester,
    SelfReferral,
    Signal,
    StageRecord,
)
from services.signals.schemas import ErasureIn, SignalIn
from shared import sealing
from shared.access_log import Action, Actor
from shared.contracts import EventType, Topics
from shared.crypto import MasterKeyring
from tests.fakes import FakeUnitOfWork

DEMO = json.loads((Path(__file__).parents[2] / "deploy" / "demo" / "signal.json").read_text())
SETTINGS = SignalsSettings()
KEYRING = MasterKeyring.parse(SETTINGS.encryption_master_keys.get_secret_value())
GP = Organisation(uuid.uuid4(), "Huisartsenpraktijk De Linde", "gp")
TEAM = Organisation(uuid.uuid4(), "Buurtteam Noord", "neighbourhood_team")
ACTOR = Actor("partner", "key:1", str(GP.id))


class FakeSignals:
    """The signals store as lists and dicts."""

    def __init__(self) -> None:
        self.organisations: dict[str, Organisation] = {}
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.stages: dict[UUID, list[StageRecord]] = {}
        self.stage_events: set[UUID] = set()
        self.keys: dict[tuple[UUID, str], tuple[UUID, str]] = {}
        self.erasures: dict[str, dict[str, Any]] = {}
        self.self_referrals: dict[str, dict[str, Any]] = {}

    async def claim_idempotency_key(
        self, organisation_id: UUID, key: str, request_hash: str, signal_id: UUID
    ) -> tuple[UUID, str] | None:
        earlier = self.keys.get((organisation_id, key))
        if earlier is None:
            self.keys[(organisation_id, key)] = (signal_id, request_hash)
        return earlier

    async def insert_signal(
        self, *, signal_id: UUID, organisation_id: UUID, pseudonym: str, received_at: datetime, event_id: UUID, **_: Any
    ) -> None:
        self.rows[signal_id] = {
            "organisation_id": organisation_id,
            "pseudonym": pseudonym,
            "case_id": None,
            "received_at": received_at,
        }
        await self.add_stage(signal_id, "received", received_at, event_id, {})

    async def add_stage(
        self,
        signal_id: UUID,
        stage: str,
        occurred_at: datetime,
        event_id: UUID,
        detail: dict[str, Any],
        case_id: UUID | None = None,
    ) -> bool:
        if signal_id not in self.rows:
            return False
        if event_id not in self.stage_events:
            self.stage_events.add(event_id)
            self.stages.setdefault(signal_id, []).append(StageRecord(stage, occurred_at, detail))
        return True

    async def signal_with_stages(
        self, signal_id: UUID, organisation_id: UUID
    ) -> tuple[Signal, list[StageRecord]] | None:
        row = self.rows.get(signal_id)
        if row is None or row["organisation_id"] != organisation_id:
            return None
        return Signal(signal_id, "received", row["received_at"]), self.stages[signal_id]

    async def organisation_by_name(self, name: str) -> Organisation | None:
        return self.organisations.get(name)

    async def recent_self_referrals(self, email_digest: str, client_digest: str) -> int:
        return sum(1 for r in self.self_referrals.values() if email_digest in (r["email_digest"],))

    async def add_self_referral(
        self, *, id: UUID, token_hash: str, concern: bool, body: dict[str, Any], email_digest: str, **_: Any
    ) -> None:
        self.self_referrals[token_hash] = {
            "id": id,
            "concern": concern,
            "body": body,
            "signal_id": None,
            "email_digest": email_digest,
        }

    async def self_referral_for_token(self, token_hash: str) -> SelfReferral | None:
        r = self.self_referrals.get(token_hash)
        return None if r is None else SelfReferral(r["id"], r["concern"], r["body"], r["signal_id"], True)

    async def confirm_self_referral(self, referral_id: UUID, signal_id: UUID) -> None:
        for r in self.self_referrals.values():
            if r["id"] == referral_id:
                r.update(body=None, signal_id=signal_id)

    async def lock_erasure_request(self, request_digest: str) -> UUID | None:
        found = self.erasures.get(request_digest)
        return None if found is None else found["id"]

    async def caregivers_of(
        self, *, pseudonyms: list[str], signal_ids: list[UUID] | None, posted_by: UUID | None
    ) -> list[str]:
        return sorted(
            {
                r["pseudonym"]
                for i, r in self.rows.items()
                if (posted_by is None or r["organisation_id"] == posted_by)
                and (r["pseudonym"] in pseudonyms or i in (signal_ids or []))
            }
        )

    async def signals_of_caregivers(self, pseudonyms: list[str], posted_by: UUID | None) -> list[Signal]:
        return [
            Signal(i, "received", r["received_at"], r["case_id"], r["pseudonym"])
            for i, r in self.rows.items()
            if r["pseudonym"] in pseudonyms and (posted_by is None or r["organisation_id"] == posted_by)
        ]

    async def delete_signals(self, signal_ids: list[UUID]) -> None:
        for signal_id in signal_ids:
            self.rows.pop(signal_id)

    async def insert_erasure(self, **row: Any) -> None:
        self.erasures[row["request_digest"]] = row

    async def erasure_of(self, erasure_id: UUID, requested_by: UUID) -> ErasureRecord | None:
        return next(
            (
                ErasureRecord(e["id"], e["requested_at"], e["scope"], 0)
                for e in self.erasures.values()
                if e["id"] == erasure_id and requested_by in (e["organisation_id"], e["officer_id"])
            ),
            None,
        )


class FakeDataKeys:
    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, bytes]] = {}

    async def for_caregiver(self, pseudonym: str, keyring: MasterKeyring) -> tuple[str, bytes]:
        return self.keys.setdefault(pseudonym, (f"k{len(self.keys)}", bytes(32)))

    async def destroy(self, pseudonyms: Iterable[str]) -> int:
        return sum(self.keys.pop(p, None) is not None for p in list(pseudonyms))


class FakeSignalsUnitOfWork(FakeUnitOfWork):
    topic, producer = service.SignalsUnitOfWork.topic, service.SignalsUnitOfWork.producer

    def __init__(self) -> None:
        super().__init__()
        self.signals = FakeSignals()
        self.data_keys = FakeDataKeys()
        self.access: list[tuple[str, str, str]] = []
        self.locked: list[str] = []

    async def log_access(
        self, actor: Actor, action: Action, subject_type: str, subject_ids: Any, *, outcome: str = "ok"
    ) -> None:
        self.access.append((action.value, subject_type, outcome))

    async def lock_caregiver(self, pseudonym: str) -> None:
        self.locked.append(pseudonym)


def _signal(**changes: Any) -> SignalIn:
    return SignalIn.model_validate({**DEMO, **changes})


async def _intake(uow: FakeSignalsUnitOfWork, organisation: Organisation = GP, **kwargs: Any) -> service.Intake:
    return await service.intake_signal(
        uow, SETTINGS, KEYRING, organisation, _signal(**kwargs.pop("changes", {})), **kwargs
    )


async def test_intake_stores_the_signal_and_queues_one_sealed_event_and_logs_who_posted() -> None:
    uow = FakeSignalsUnitOfWork()
    intake = await _intake(uow, actor=ACTOR)
    [event] = uow.events(Topics.SIGNALS)
    assert event.event_type == EventType.SIGNAL_RECEIVED and event.payload.signal_id == intake.signal_id
    wire, sealed = sealing.wire_payload(event.payload.model_dump(mode="json"))
    assert sealed and DEMO["caregiver"]["name"] not in json.dumps(wire), "on the wire, personal data only sealed"
    assert list(uow.signals.rows) == [intake.signal_id]
    assert uow.access == [("create", "signal", "ok")]


async def test_a_retry_with_the_same_idempotency_key_names_the_first_signal_and_another_body_conflicts() -> None:
    uow = FakeSignalsUnitOfWork()
    first = await _intake(uow, idempotency_key="k1")
    again = await _intake(uow, idempotency_key="k1")
    other = await _intake(uow, idempotency_key="k1", changes={"urgency": "high"})
    assert again == service.Intake(first.signal_id) and other == service.Intake(first.signal_id, conflict=True)
    assert len(uow.events()) == 1 and len(uow.signals.rows) == 1


async def test_a_source_kind_the_organisation_may_not_post_as_is_refused_naming_the_field() -> None:
    uow = FakeSignalsUnitOfWork()
    with pytest.raises(service.Invalid) as refused:
        await _intake(uow, changes={"source": {"kind": "resident"}})
    assert refused.value.errors()[0]["loc"] == ("body", "source", "kind")
    assert uow.events() == [] and uow.signals.rows == {}


async def test_a_partner_withdraws_only_its_own_signals_and_the_key_stays_while_another_organisations_remain() -> None:
    uow = FakeSignalsUnitOfWork()
    own = (await _intake(uow)).signal_id
    theirs = (await _intake(uow, TEAM, changes={"source": {"kind": "neighbourhood_team"}})).signal_id
    requester = Requester(GP.id, GP.name, "partner")
    done = await service.request_erasure(uow, SETTINGS, ErasureIn(signal_ids=[own]), requester, ACTOR)
    assert done.refused is None and done.erasure_id is not None
    assert list(uow.signals.rows) == [theirs]
    [erased] = [e.payload for e in uow.events() if e.event_type == EventType.CAREGIVER_ERASED]
    assert erased.signal_ids == [own] and erased.case_ids == [] and uow.tombstones == [erased]
    assert len(uow.data_keys.keys) == 1, "the other organisation's signal still needs the data key"
    again = await service.request_erasure(uow, SETTINGS, ErasureIn(signal_ids=[own]), requester, ACTOR)
    assert again.erasure_id == done.erasure_id and uow.access[-1] == ("read", "erasure", "ok")


async def test_the_privacy_officer_erases_the_person_and_shreds_the_key() -> None:
    uow = FakeSignalsUnitOfWork()
    await _intake(uow)
    await _intake(uow, TEAM, changes={"source": {"kind": "neighbourhood_team"}})
    officer = Requester(uuid.uuid4(), "Functionaris", "privacy_officer")
    caregiver = {k: DEMO["caregiver"][k] for k in ("name", "birth_year", "postcode")}
    done = await service.request_erasure(
        uow,
        SETTINGS,
        ErasureIn.model_validate({"caregiver": caregiver}),
        officer,
        Actor("privacy_officer", str(officer.id)),
    )
    assert done.erasure_id is not None and uow.signals.rows == {} and uow.data_keys.keys == {}
    assert [e["signals"] for e in uow.signals.erasures.values()] == [2]


async def test_refusals_are_logged_and_raised_only_after_the_commit() -> None:
    uow = FakeSignalsUnitOfWork()
    requester = Requester(GP.id, GP.name, "partner")
    person = ErasureIn.model_validate({"signal_ids": [str(uuid.uuid4())], "scope": "caregiver"})
    forbidden = await service.request_erasure(uow, SETTINGS, person, requester, ACTOR)
    missing = await service.request_erasure(uow, SETTINGS, ErasureIn(signal_ids=[uuid.uuid4()]), requester, ACTOR)
    assert isinstance(forbidden.refused, service.Forbidden) and isinstance(missing.refused, service.NotFound)
    assert [a[2] for a in uow.access] == ["forbidden", "not_found"] and uow.events() == []


async def test_a_confirmed_self_referral_becomes_one_signal_however_often_the_link_is_followed() -> None:
    uow = FakeSignalsUnitOfWork()
    front_door = Organisation(uuid.uuid4(), service.SELF_ORGANISATION, "self")
    uow.signals.organisations[front_door.name] = front_door
    links: list[str] = []

    def confirm_url(token: str) -> str:
        links.append(token)
        return token

    await service.submit_self_referral(
        uow,
        SETTINGS,
        KEYRING,
        _signal(source={"kind": "self"}),
        email="anna@example.nl",
        name="Anna",
        language="nl",
        client="1.2.3.4",
        concern=False,
        confirm_url=confirm_url,
    )
    assert [e.event_type for e in uow.events()] == [EventType.SELF_REFERRAL_CONFIRMATION_REQUESTED]
    first = await service.confirm_self_referral(uow, SETTINGS, KEYRING, links[0], lambda i: f"/mijn/{i}")
    second = await service.confirm_self_referral(uow, SETTINGS, KEYRING, links[0], lambda i: f"/mijn/{i}")
    assert first is not None and first == second and list(uow.signals.rows) == [first.signal_id]
    assert uow.events()[-1].payload.status_url == f"/mijn/{first.signal_id}"
    assert await service.confirm_self_referral(uow, SETTINGS, KEYRING, "unknown", str) is None


async def test_a_stage_is_added_once_per_event_and_an_unknown_signal_is_skipped() -> None:
    uow = FakeSignalsUnitOfWork()
    signal_id = (await _intake(uow)).signal_id
    event_id, now = uuid.uuid4(), datetime.now(UTC)
    for _ in range(2):
        await service.record_stage(uow, event_id, [signal_id, uuid.uuid4()], "taken_up", now, {})
    found = await service.signal_status(uow, signal_id, GP.id)
    assert found is not None and [s.stage for s in found[1]] == ["received", "taken_up"]
    assert domain.status_view(*found).taken_up is not None
