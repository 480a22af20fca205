"""The closed loop in notify against a real PostgreSQL: referrals and the provider API,
signed links, rejection and re-match, deadline reminders and escalation with a controllable
clock, the follow-up question, redelivery and erasure.

The handlers, routers and workers are notify's own; only the broker is left out (events
are read from the outbox they are written to) and time comes from a clock the test moves."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.notify import pages, provider_api, service
from services.notify.api import MIGRATIONS, delivery_channels
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.deadlines import run_once
from services.notify.delivery import DeliveryWorker
from services.notify.repository import Contacts
from shared.auth import Scope, issue
from shared.contracts import CaregiverErased, EventType, MatchesProposed
from shared.db import create_pool, migrate
from shared.http import install_error_handlers
from shared.outbox import new_event
from tests.unit.test_notify_domain import match, proposed

pytestmark = pytest.mark.integration

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FRIDAY = datetime(2026, 11, 20, 10, 0, tzinfo=AMSTERDAM)
PROVIDER_KEY = "provider-key-a"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Notify:
    pool: asyncpg.Pool
    ctx: NotifyContext
    clock: FakeClock
    api: httpx.AsyncClient
    registry: CollectorRegistry

    async def on_matches(self, payload: MatchesProposed) -> None:
        event = new_event(
            EventType.MATCHES_PROPOSED,
            payload,
            producer="matching",
            subject="pseudonym-1",
            correlation_id=f"corr-{payload.signal_id}",
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await service.propose(service.NotifyUnitOfWork(conn), self.ctx, event)

    async def on_erased(self, payload: CaregiverErased) -> None:
        event = new_event(
            EventType.CAREGIVER_ERASED, payload, producer="signals", subject="pseudonym-1", correlation_id="erase"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await service.forget_caregiver(service.NotifyUnitOfWork(conn), self.ctx, event)

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT body FROM outbox WHERE headers->>'event_type' = $1 ORDER BY id", event_type
        )
        return [json.loads(r["body"])["payload"] for r in rows]

    async def notifications(self, **where: Any) -> list[asyncpg.Record]:
        clauses = " AND ".join(f"{k} = ${i}" for i, k in enumerate(where, 1)) or "true"
        return await self.pool.fetch(
            f"SELECT * FROM notifications WHERE {clauses} ORDER BY created_at, template", *where.values()
        )

    async def referrals(self, case_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM referrals WHERE case_id = $1 ORDER BY created_at, service_id", case_id
        )

    def worker(self, channels: dict[str, Any] | None = None) -> DeliveryWorker:
        return DeliveryWorker(self.ctx, channels if channels is not None else delivery_channels(self.ctx.settings))

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def settings_for(database_url: str, **overrides: Any) -> NotifySettings:
    # The stand-in webhook receivers listen on plain http on loopback, which production refuses.
    overrides.setdefault("webhook_allow_http_hosts", ["127.0.0.1", "localhost"])
    return NotifySettings(
        database_url=database_url, public_url="http://notify.test", delivery_backoff_seconds=0.0, **overrides
    )


@pytest.fixture
async def notify(database_url: str, tmp_path) -> AsyncIterator[Notify]:
    await migrate(database_url, MIGRATIONS)
    pool = await create_pool(database_url, size=4)
    clock = FakeClock(FRIDAY)
    settings = settings_for(database_url, mailbox_dir=tmp_path / "drop")
    made = NotifyContext.create(settings, clock)
    registry = made.runtime.metrics.registry
    runtime: Any = SimpleNamespace(pool=pool, settings=settings)  # routes and workers read only these
    ctx = replace(made, runtime=runtime)
    app = FastAPI()
    app.state.runtime = runtime
    app.state.context = ctx
    install_error_handlers(app)
    app.include_router(provider_api.router)
    app.include_router(pages.router)
    async with pool.acquire() as conn:
        await issue(conn, key=PROVIDER_KEY, scopes=[Scope.PROVIDER], subject="a")
        await issue(conn, key="provider-key-b", scopes=[Scope.PROVIDER], subject="b")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify.test") as api:
        yield Notify(pool, ctx, clock, api, registry)
    await pool.close()


def auth(key: str = PROVIDER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def by(rows, **where) -> list[Any]:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


async def test_proposals_become_referrals_with_working_day_deadlines(notify: Notify) -> None:
    event = proposed(matches=[match("a"), match("b")])
    await notify.on_matches(event)
    referrals = await notify.referrals(event.case_id)
    assert [(r["service_id"], r["status"]) for r in referrals] == [("a", "requested"), ("b", "requested")]
    a = referrals[0]
    # Friday 10:00 + 2 working days = Tuesday 10:00; + 4 = Thursday 10:00 (local time).
    assert a["remind_at"] == datetime(2026, 11, 24, 10, 0, tzinfo=AMSTERDAM)
    assert a["escalate_at"] == datetime(2026, 11, 26, 10, 0, tzinfo=AMSTERDAM)
    assert a["reservation_id"] == event.matches[0].reservation_id
    notes = await notify.notifications(case_id=event.case_id)
    assert sorted((n["recipient_role"], n["template"], n["status"]) for n in notes) == [
        ("caregiver", "caregiver_proposals", "pending"),
        ("provider", "provider_referral", "pending"),
        ("provider", "provider_referral", "pending"),
        ("referrer", "referrer_update", "pending"),
    ]
    provider = by(notes, address="a@provider.example.nl")[0]
    assert (
        f"http://notify.test/r/{a['id']}/accept?" in provider["body_text"]
        and "vóór 24-11-2026" in provider["body_text"]
    )


async def test_a_redelivered_proposal_sends_nothing_twice(notify: Notify) -> None:
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    await notify.on_matches(event)  # the same event again, as a replay under a new event id would be
    assert len(await notify.notifications(case_id=event.case_id)) == 3
    assert len(await notify.referrals(event.case_id)) == 1
    assert len(await notify.events(EventType.FOLLOW_UP_RECORDED)) == 0


async def test_provider_api_answers_and_refuses(notify: Notify) -> None:
    event = proposed(matches=[match("a"), match("b")])
    await notify.on_matches(event)
    a, _ = await notify.referrals(event.case_id)
    url = f"/v1/referrals/{a['id']}"
    assert (await notify.api.get(url)).status_code == 401
    assert (await notify.api.get(url, headers=auth("wrong"))).status_code == 401
    assert (await notify.api.get(url, headers=auth("provider-key-b"))).status_code == 403
    assert (await notify.api.get(f"/v1/referrals/{uuid.uuid4()}", headers=auth())).status_code == 404
    listed = (await notify.api.get("/v1/referrals?status=requested", headers=auth())).json()
    assert [r["id"] for r in listed] == [str(a["id"])]
    assert listed[0]["caregiver"]["name"] == "Anna de Vries" and listed[0]["referrer"] == "GP De Linde"

    missing = await notify.api.post(f"{url}/status", json={"status": "rejected"}, headers=auth())
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "reason_code"
    unknown = await notify.api.post(f"{url}/status", json={"status": "lost"}, headers=auth())
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "status"
    accepted = await notify.api.post(f"{url}/status", json={"status": "accepted"}, headers=auth())
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert [h["status"] for h in accepted.json()["history"]] == ["requested", "accepted"]
    illegal = await notify.api.post(
        f"{url}/status", json={"status": "rejected", "reason_code": "other"}, headers=auth()
    )
    assert illegal.status_code == 409 and "accepted" in illegal.json()["detail"]
    again = await notify.api.post(f"{url}/status", json={"status": "accepted"}, headers=auth())
    assert again.status_code == 200
    updates = await notify.events(EventType.REFERRAL_UPDATED)
    assert [(u["status"], u["updated_by"]) for u in updates] == [("accepted", "provider")], "a repeat emits nothing"
    assert updates[0]["reservation_id"] == str(event.matches[0].reservation_id)
    assert notify.metric("sts_referral_updates_total", status="accepted", updated_by="provider") == 1


async def test_a_rejection_releases_the_slot_asks_for_a_rematch_and_tells_the_referrer(notify: Notify) -> None:
    event = proposed(matches=[match("a"), match("b")])
    async with notify.pool.acquire() as conn:
        await Contacts(conn).upsert_partner(
            event.signal.organisation_id, "GP De Linde", "gp@delinde.example.nl", None, None, "nl"
        )
    await notify.on_matches(event)
    a = (await notify.referrals(event.case_id))[0]
    response = await notify.api.post(
        f"/v1/referrals/{a['id']}/status",
        headers=auth(),
        json={"status": "rejected", "reason_code": "no_capacity", "note": "vol tot maart"},
    )
    assert response.status_code == 200
    update = (await notify.events(EventType.REFERRAL_UPDATED))[0]
    assert update["status"] == "rejected" and update["reason_code"] == "no_capacity"
    assert update["excluded_service_ids"] == ["a"] and update["reservation_id"] == str(event.matches[0].reservation_id)
    assert update["signal"]["signal_id"] == str(event.signal_id) and update["result"]["risk_level"] == "overburdened"
    told = by(await notify.notifications(case_id=event.case_id), template="referrer_referral_status")
    assert len(told) == 1 and told[0]["channel"] == "email" and told[0]["address"] == "gp@delinde.example.nl"
    assert "niet aangenomen: geen plek" in told[0]["body_text"]

    # Matching answers with one new proposal for the same signal.
    rematch = proposed(matches=[match("c")], case_id=event.case_id, signal_id=event.signal_id)
    rematch = rematch.model_copy(update={"signal": event.signal})
    await notify.on_matches(rematch)
    assert [(r["service_id"], r["status"]) for r in await notify.referrals(event.case_id)] == [
        ("a", "rejected"),
        ("b", "requested"),
        ("c", "requested"),
    ]
    notes = await notify.notifications(case_id=event.case_id)
    referrer = by(notes, template="referrer_update")
    assert len(referrer) == 2 and "nieuw voorstel" in referrer[1]["subject"]
    caregiver = by(notes, template="caregiver_proposals")
    assert len(caregiver) == 2 and caregiver[1]["subject"].startswith("Nieuw voorstel")

    # A second rejection lists both declined services for matching to skip.
    b = (await notify.referrals(event.case_id))[1]
    await notify.api.post(
        f"/v1/referrals/{b['id']}/status",
        headers=auth("provider-key-b"),
        json={"status": "rejected", "reason_code": "out_of_area"},
    )
    assert (await notify.events(EventType.REFERRAL_UPDATED))[-1]["excluded_service_ids"] == ["a", "b"]


async def test_signed_links_let_a_provider_answer_without_a_key(notify: Notify) -> None:
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    mail = by(await notify.notifications(case_id=event.case_id), template="provider_referral")[0]["body_text"]
    decline = next(line.split(": ", 1)[1] for line in mail.splitlines() if line.startswith("Niet aannemen"))
    path = urlsplit(decline)
    target = f"{path.path}?{path.query}"

    page = await notify.api.get(target + "&reason=out_of_area")
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert '<option value="out_of_area" selected>' in page.text
    assert (await notify.events(EventType.REFERRAL_UPDATED)) == [], "opening the link does not answer"

    tampered = await notify.api.post(
        target.replace("sig=", "sig=0"),
        content="reason=no_capacity",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert tampered.status_code == 403
    accept_with_decline_sig = target.replace("/decline?", "/accept?")
    assert (await notify.api.post(accept_with_decline_sig)).status_code == 403

    done = await notify.api.post(
        target,
        content="reason=out_of_area&note=buiten+Leusden",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "vastgelegd" in done.text
    referral = (await notify.referrals(event.case_id))[0]
    assert (referral["status"], referral["reason_code"], referral["note"]) == (
        "rejected",
        "out_of_area",
        "buiten Leusden",
    )
    assert (await notify.events(EventType.REFERRAL_UPDATED))[0]["updated_by"] == "provider"

    notify.clock.advance(days=31)
    assert (await notify.api.get(target)).status_code == 403, "links expire"


async def test_deadlines_remind_then_escalate_on_working_days(notify: Notify) -> None:
    event = proposed(matches=[match("a"), match("b")])
    await notify.on_matches(event)
    a, b = await notify.referrals(event.case_id)
    await notify.api.post(
        f"/v1/referrals/{b['id']}/status", json={"status": "accepted"}, headers=auth("provider-key-b")
    )
    async with notify.pool.acquire() as conn:
        await Contacts(conn).save_consultant("GM0327", "consulent@leusden.example.nl", "Consulent", "registered")

    notify.clock.current = datetime(2026, 11, 23, 23, 0, tzinfo=AMSTERDAM)  # Monday night: only 1 working day
    assert (await run_once(notify.ctx)).reminders == 0
    notify.clock.current = datetime(2026, 11, 24, 10, 1, tzinfo=AMSTERDAM)  # Tuesday, after the first deadline
    assert (await run_once(notify.ctx)).reminders == 1
    assert (await run_once(notify.ctx)).reminders == 0, "one reminder, not one per round"
    reminders = by(await notify.notifications(case_id=event.case_id), template="provider_reminder")
    assert [(r["address"], r["referral_id"]) for r in reminders] == [("a@provider.example.nl", a["id"])]
    assert "/r/" in reminders[0]["body_text"], "the reminder carries the answer links again"

    notify.clock.current = datetime(2026, 11, 26, 10, 1, tzinfo=AMSTERDAM)  # Thursday: the second deadline
    done = await run_once(notify.ctx)
    assert (done.reminders, done.escalations) == (0, 1)
    escalation = by(await notify.notifications(case_id=event.case_id), template="consultant_escalation")
    assert [(e["recipient_role"], e["address"], e["status"]) for e in escalation] == [
        ("consultant", "consulent@leusden.example.nl", "pending")
    ]
    assert notify.metric("sts_referral_reminders_total") == 1
    assert notify.metric("sts_referral_escalations_total") == 1


async def test_an_escalation_without_a_consultant_is_visible(notify: Notify) -> None:
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    notify.clock.advance(days=14)
    await run_once(notify.ctx)
    escalation = by(await notify.notifications(case_id=event.case_id), template="consultant_escalation")[0]
    assert (
        escalation["status"] == "suppressed" and "no caregiver consultant known for GM0327" in escalation["last_error"]
    )
    sent = await notify.events(EventType.NOTIFICATION_SENT)
    assert any(s["template"] == "consultant_escalation" and s["status"] == "suppressed" for s in sent)


async def test_the_consultant_proposed_by_matching_is_remembered_for_escalations(notify: Notify) -> None:
    consultant = match("mc", consultant=True, contact_email="mc@leusden.example.nl", service_name="Consulent")
    await notify.on_matches(proposed(matches=[consultant]))
    async with notify.pool.acquire() as conn:
        assert await Contacts(conn).consultant_email("GM0327") == "mc@leusden.example.nl"
        await Contacts(conn).save_consultant("GM0327", "registered@leusden.example.nl", None, "registered")
        await Contacts(conn).save_consultant("GM0327", "mc@leusden.example.nl", None, "social_map")
        assert await Contacts(conn).consultant_email("GM0327") == "registered@leusden.example.nl"


async def test_the_caregiver_is_asked_after_two_weeks_and_a_no_triggers_rescreening(notify: Notify) -> None:
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    notify.clock.advance(days=13)
    assert (await run_once(notify.ctx)).follow_ups == 0
    notify.clock.advance(days=1, minutes=1)
    assert (await run_once(notify.ctx)).follow_ups == 1
    question = by(await notify.notifications(case_id=event.case_id), template="caregiver_followup")[0]
    assert question["address"] == "anna.devries@example.nl" and "Mantelzorgcafé a" in question["body_text"]
    no = next(line.split(": ", 1)[1] for line in question["body_text"].splitlines() if line.startswith("Nee"))
    path = urlsplit(no)
    target = f"{path.path}?{path.query}"
    assert "Bevestigen" in (await notify.api.get(target)).text
    answered = await notify.api.post(target)
    assert answered.status_code == 200 and "nee, nog niet" in answered.text
    assert (await notify.api.post(target.replace("/no?", "/yes?"))).status_code == 403
    await notify.api.post(target)
    recorded = await notify.events(EventType.FOLLOW_UP_RECORDED)
    assert [(r["case_id"], r["support_arrived"]) for r in recorded] == [(str(event.case_id), False)]


async def test_do_not_contact_schedules_no_follow_up_but_informs_the_referrer(notify: Notify) -> None:
    event = proposed(matches=[match("a")], caregiver={"contact_preference": "do_not_contact"})
    await notify.on_matches(event)
    notes = await notify.notifications(case_id=event.case_id)
    assert {(n["recipient_role"], n["status"]) for n in notes} == {
        ("caregiver", "suppressed"),
        ("provider", "suppressed"),
        ("referrer", "pending"),
    }
    assert await notify.referrals(event.case_id) == []
    notify.clock.advance(days=30)
    assert (await run_once(notify.ctx)).follow_ups == 0


async def test_erasure_blanks_the_caregiver_and_ends_open_referrals(notify: Notify) -> None:
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    await notify.on_erased(
        CaregiverErased(
            erasure_id=uuid.uuid4(),
            caregiver_pseudonym="pseudonym-1",
            signal_ids=[event.signal_id],
            case_ids=[event.case_id],
            requested_at=FRIDAY,
            requested_by=event.signal.organisation_id,
        )
    )
    notes = await notify.notifications(case_id=event.case_id)
    assert notes and all(n["address"] is None and n["body_text"] == "" and n["body_html"] is None for n in notes)
    assert {n["status"] for n in notes} == {"erased"}, "unsent messages are not sent after all"
    referral = (await notify.referrals(event.case_id))[0]
    assert referral["status"] == "cancelled" and referral["signal"] is None and referral["result"] is None
    update = (await notify.events(EventType.REFERRAL_UPDATED))[-1]
    assert update["status"] == "cancelled" and update["signal"] is None
    assert update["reservation_id"] == str(event.matches[0].reservation_id)
    follow_up = await notify.pool.fetchrow("SELECT * FROM follow_ups WHERE case_id = $1", event.case_id)
    assert follow_up["status"] == "cancelled" and follow_up["signal"] is None
    assert (
        await notify.pool.fetchval("SELECT count(*) FROM outbox WHERE key = 'pseudonym-1' AND published_at IS NOT NULL")
        == 0
    )
    notify.clock.advance(days=30)
    done = await run_once(notify.ctx)
    assert (done.reminders, done.escalations, done.follow_ups) == (0, 0, 0), (
        "nobody is chased about an erased caregiver"
    )
