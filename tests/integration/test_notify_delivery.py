"""Delivery with leases against a real PostgreSQL and a real SMTP server (aiosmtpd, in process):
a crash mid-send re-sends only what was in flight, with the same Message-ID; one failing
message does not re-send the others; a relay that is down opens the breaker instead of
burning attempts, and everything goes out once it is back; connections are reused and
re-opened; shutdown waits for sends in flight; erasure wins over a claimed message; the
resend CLI sends a failed message again under its own id."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from deploy.stack import free_port
from services.notify.channels import Channel
from services.notify.domain import Notification
from services.notify.repository import Contacts
from shared.contracts import CaregiverErased, EventType
from tests.integration.test_notify_channels import Receiver, configure, receiver, use_smtp  # noqa: F401 (fixture)
from tests.integration.test_notify_closed_loop import FRIDAY, Notify, notify  # noqa: F401 (fixture)
from tests.unit.test_notify_domain import match, proposed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Received:
    peer: tuple[str, int]  # one per connection
    message_id: str
    to: str


@dataclass
class Relay:
    """Records every message it is handed (with the connection it came on) and can hold the
    answer to chosen recipients, as a relay that is slow to say 250 after it got the data."""

    received: list[Received] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.received.append(Received(session.peer, mail["Message-ID"].strip(), envelope.rcpt_tos[0]))
        if self.hold & set(envelope.rcpt_tos):
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return "250 OK"

    def count(self) -> Counter[str]:
        return Counter(r.to for r in self.received)


@pytest.fixture
def relay() -> Iterator[tuple[Relay, Controller]]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    handler.release.set()
    controller.stop()


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


SLOW = "slow@example.nl"
PROVIDERS = ["a@provider.example.nl", "b@provider.example.nl"]


async def statuses(notify: Notify) -> dict[str, tuple[str, int]]:
    return {r["address"]: (r["status"], r["attempts"]) for r in await notify.notifications(channel="email")}


async def sent_events(notify: Notify) -> Counter[tuple[str, str]]:
    return Counter((e["notification_id"], e["status"]) for e in await notify.events(EventType.NOTIFICATION_SENT))


async def test_a_crash_mid_send_resends_only_the_message_in_flight_with_the_same_message_id(
    notify: Notify,
    relay: tuple[Relay, Controller],
) -> None:
    server, controller = relay
    use_smtp(notify, controller.port)
    server.hold = {SLOW}
    await notify.on_matches(proposed(matches=[match("a"), match("b")], caregiver={"email": SLOW}))

    crashing = asyncio.create_task(notify.worker().deliver_due())

    async def others_recorded() -> bool:
        now = await statuses(notify)
        return len(server.received) == 3 and all(now[p] == ("delivered", 1) for p in PROVIDERS)

    await until(others_recorded, "the relay holds the slow mail and the others are recorded")
    crashing.cancel()  # the process dies while the relay has the slow mail but has not answered
    with contextlib.suppress(asyncio.CancelledError):
        await crashing
    server.release.set()

    slow = (await notify.notifications(address=SLOW))[0]
    assert (slow["status"], slow["attempts"]) == ("pending", 1), "the attempt was counted before the send"
    assert slow["lease_until"] is not None
    assert await notify.worker().deliver_due() == 0, "nobody takes it while its lease holds"

    # The lease runs out (here: moved into the past) and another process takes the message over.
    await notify.pool.execute("UPDATE notifications SET lease_until = now() WHERE id = $1", slow["id"])
    assert await notify.worker().deliver_due() == 1
    assert await statuses(notify) == {SLOW: ("delivered", 2), **{p: ("delivered", 1) for p in PROVIDERS}}
    assert server.count() == {SLOW: 2, **{p: 1 for p in PROVIDERS}}, "only the message in flight came twice"
    slow_ids = {r.message_id for r in server.received if r.to == SLOW}
    assert slow_ids == {f"<{slow['id']}@signal-to-support.example.nl>"}, "the same Message-ID: the receiver can dedupe"
    events = await sent_events(notify)
    assert all(n == 1 for n in events.values()) and len(events) == 4, "one notification.sent per message"


class FailsAfterSending:
    """A real channel whose answer for one recipient is lost after the relay accepted it."""

    def __init__(self, inner: Channel, victim: str) -> None:
        self.inner = inner
        self.victim = victim

    async def send(self, message: Notification) -> None:
        await self.inner.send(message)
        if message.address == self.victim:
            raise ConnectionResetError("the answer was lost")

    async def close(self) -> None:
        await self.inner.close()


async def test_one_failing_message_does_not_resend_the_others(notify: Notify, relay: tuple[Relay, Controller]) -> None:
    server, controller = relay
    use_smtp(notify, controller.port)
    await notify.on_matches(proposed(matches=[match("a"), match("b")], caregiver={"email": SLOW}))
    worker = notify.worker()
    worker.channels["email"] = FailsAfterSending(worker.channels["email"], SLOW)
    assert await worker.deliver_due() == 4
    assert await statuses(notify) == {SLOW: ("pending", 1), **{p: ("delivered", 1) for p in PROVIDERS}}

    assert await notify.worker().deliver_due() == 1, "only the failed message is due again"
    assert server.count() == {SLOW: 2, **{p: 1 for p in PROVIDERS}}
    assert (await statuses(notify))[SLOW] == ("delivered", 2)


async def test_a_relay_that_is_down_opens_the_breaker_and_everything_goes_out_once_it_is_back(
    notify: Notify,
) -> None:
    port = free_port()  # nothing listens yet: connection refused
    # A cool-off long enough that the three rounds below run inside it even on a busy machine.
    use_smtp(notify, port, delivery_breaker_failures=2, delivery_breaker_cooloff_seconds=2.0)
    await notify.on_matches(proposed(matches=[match("a"), match("b"), match("c")]))
    worker = notify.worker()
    assert await worker.deliver_due() == 5  # four mails and the referrer's status-view entry
    assert worker.breaker_states == {"email": "open"}
    assert notify.metric("sts_notify_breaker_state", channel="email") == 2
    await worker.observe()
    assert notify.metric("sts_notifications_oldest_pending_seconds") > 0

    attempts = await statuses(notify)
    assert {a for _, a in attempts.values()} == {1}
    for _ in range(3):
        assert await worker.deliver_due() == 0, "nothing of an open channel is claimed"
    assert await statuses(notify) == attempts, "no attempts are burned while the relay is down"

    server = Relay()
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    try:

        async def half_open() -> bool:
            return worker.breaker_states == {"email": "half-open"}

        await until(half_open, "the cool-off passed")
        assert await worker.deliver_due() == 1, "half-open: one message probes the relay"
        assert worker.breaker_states == {"email": "closed"}
        assert await worker.deliver_due() == 3
    finally:
        controller.stop()
    assert {s for s, _ in (await statuses(notify)).values()} == {"delivered"}
    assert set(server.count().values()) == {1} and len(server.received) == 4
    assert notify.metric("sts_notify_breaker_state", channel="email") == 0
    await worker.observe()
    assert notify.metric("sts_notifications_oldest_pending_seconds") == 0


async def test_smtp_connections_are_reused_and_reopened_after_the_relay_dropped_them(notify: Notify) -> None:
    server = Relay()
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        use_smtp(notify, controller.port, delivery_concurrency=2)
        await notify.on_matches(proposed(matches=[match(c) for c in "abcdef"]))
        worker = notify.worker()
        while await worker.deliver_due():
            pass
    finally:
        controller.stop()  # the relay restarts: the pooled connections are gone
    assert len(server.received) == 7
    assert len({r.peer for r in server.received}) <= 2, "seven mails over at most two connections"

    again = Relay()
    restarted = Controller(again, hostname="127.0.0.1", port=controller.port)
    restarted.start()
    try:
        await notify.on_matches(proposed(matches=[], caregiver={"email": "after@example.nl"}))
        assert await worker.deliver_due() == 2
    finally:
        restarted.stop()
    assert [r.to for r in again.received] == ["after@example.nl"]
    assert (await notify.notifications(address="after@example.nl"))[0]["status"] == "delivered"


@pytest.mark.parametrize("finishes_in_time", [True, False])
async def test_shutdown_waits_for_the_send_in_flight_or_leaves_it_to_its_lease(
    notify: Notify,
    relay: tuple[Relay, Controller],
    finishes_in_time: bool,
) -> None:
    server, controller = relay
    use_smtp(notify, controller.port, shutdown_grace_seconds=4.0, delivery_poll_seconds=0.05)
    server.hold = {SLOW}
    await notify.on_matches(proposed(matches=[match("a"), match("b")], caregiver={"email": SLOW}))
    worker = notify.worker()
    await worker.start()

    async def only_the_slow_one_in_flight() -> bool:
        now = await statuses(notify)
        return len(server.received) == 3 and all(now[p] == ("delivered", 1) for p in PROVIDERS)

    await until(only_the_slow_one_in_flight, "the relay holds the slow mail and the others are recorded")
    stopping = asyncio.create_task(worker.stop())
    if finishes_in_time:
        await asyncio.sleep(0.2)
        assert not stopping.done(), "stop() waits for the send in flight"
        server.release.set()
    await stopping

    slow = (await notify.notifications(address=SLOW))[0]
    if finishes_in_time:
        assert (slow["status"], slow["attempts"]) == ("delivered", 1), "its outcome was recorded before stopping"
    else:
        assert (slow["status"], slow["attempts"]) == ("pending", 1) and slow["lease_until"] is not None
        server.release.set()
        await notify.pool.execute("UPDATE notifications SET lease_until = now() WHERE id = $1", slow["id"])
        assert await notify.worker().deliver_due() == 1, "after its lease it is sent again, alone"
    assert server.count() == {SLOW: 1 if finishes_in_time else 2, **{p: 1 for p in PROVIDERS}}
    assert {s for s, _ in (await statuses(notify)).values()} == {"delivered"}


async def test_a_committed_message_wakes_the_running_worker_before_its_next_poll(
    notify: Notify,
    relay: tuple[Relay, Controller],
) -> None:
    server, controller = relay
    use_smtp(notify, controller.port, delivery_poll_seconds=120.0)
    worker = notify.worker()
    await worker.start()
    try:
        await asyncio.sleep(1.0)  # its first round found nothing; the next poll is two minutes away
        await notify.on_matches(proposed(matches=[match("a"), match("b")]))

        async def all_sent() -> bool:
            return len(server.received) == 3

        await until(all_sent, "the commit's NOTIFY woke the worker", timeout=15)
    finally:
        await worker.stop()


async def test_a_broken_webhook_host_pauses_that_host_only(notify: Notify, receiver: Receiver) -> None:
    configure(notify, delivery_breaker_failures=2)
    broken = f"http://localhost:{free_port()}/hooks"  # nothing listens there

    async def update_for(url: str) -> None:
        event = proposed(matches=[], caregiver={"contact_preference": "do_not_contact"})
        async with notify.pool.acquire() as conn:
            await Contacts(conn).upsert_partner(event.signal.organisation_id, "GP", None, url, "k", "nl")
        await notify.on_matches(event)

    for url in (broken, broken, receiver.url):
        await update_for(url)
    worker = notify.worker()
    assert await worker.deliver_due() == 3
    assert worker.breaker_states == {"webhook:localhost": "open"}
    assert len(receiver.requests) == 1

    await update_for(receiver.url)
    assert await worker.deliver_due() == 1, "the other partner's host still gets its updates"
    assert len(receiver.requests) == 2
    keys = {(r["breaker_key"], r["status"]) for r in await notify.notifications(channel="webhook")}
    assert keys == {("webhook:localhost", "pending"), ("webhook:127.0.0.1", "delivered")}


def erasure(event: Any) -> CaregiverErased:
    return CaregiverErased(
        erasure_id=uuid.uuid4(),
        caregiver_pseudonym="pseudonym-1",
        signal_ids=[event.signal_id],
        case_ids=[event.case_id],
        requested_at=FRIDAY,
        requested_by=event.signal.organisation_id,
    )


async def test_a_message_erased_after_its_claim_is_not_sent(notify: Notify, relay: tuple[Relay, Controller]) -> None:
    server, controller = relay
    use_smtp(notify, controller.port)
    event = proposed(matches=[match("a")])
    await notify.on_matches(event)
    worker = notify.worker()
    claimed = await worker.claim(10)
    assert len(claimed) == 3
    await notify.on_erased(erasure(event))
    await asyncio.gather(*(worker.deliver(row) for row in claimed))
    assert server.received == []
    assert {n["status"] for n in await notify.notifications(case_id=event.case_id)} == {"erased"}
    assert await sent_events(notify) == Counter()


class ErasedDuringSend:
    """The erasure commits while the relay has the message: it was sent, but is not recorded."""

    def __init__(self, inner: Channel, erase: Callable[[], Awaitable[None]]) -> None:
        self.inner = inner
        self.erase = erase

    async def send(self, message: Notification) -> None:
        await self.inner.send(message)
        await self.erase()

    async def close(self) -> None:
        await self.inner.close()


async def test_recording_a_send_does_not_resurrect_an_erased_message(
    notify: Notify,
    relay: tuple[Relay, Controller],
) -> None:
    server, controller = relay
    use_smtp(notify, controller.port)
    event = proposed(matches=[])
    await notify.on_matches(event)
    worker = notify.worker()
    worker.channels["email"] = ErasedDuringSend(worker.channels["email"], lambda: notify.on_erased(erasure(event)))
    await worker.deliver_due()
    assert len(server.received) == 1
    [mail] = await notify.notifications(channel="email")
    assert (mail["status"], mail["address"], mail["body_text"]) == ("erased", None, "")
    assert (str(mail["id"]), "delivered") not in await sent_events(notify), "no notification.sent for it"


def cli(notify: Notify, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.notify.cli", "--database-url", notify.ctx.settings.database_url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Refusing:
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return "550 5.1.1 no such user"


async def test_the_resend_cli_sends_a_failed_message_again_under_its_own_id(
    notify: Notify,
    relay: tuple[Relay, Controller],
) -> None:
    refusing = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    refusing.start()
    try:
        use_smtp(notify, refusing.port)
        first, erased = proposed(matches=[]), proposed(matches=[], caregiver={"email": "gone@example.nl"})
        await notify.on_matches(first)
        await notify.on_matches(erased)
        await notify.worker().deliver_due()
    finally:
        refusing.stop()
    failed = await notify.notifications(channel="email", status="failed")
    assert len(failed) == 2
    await notify.on_erased(erasure(erased))
    mail = (await notify.notifications(address="anna.devries@example.nl"))[0]

    listed = await asyncio.to_thread(cli, notify, "list", "--status", "failed", "--channel", "email")
    assert str(mail["id"]) in listed and "550" in listed and "2 failed notification(s)" in listed

    out = await asyncio.to_thread(cli, notify, "resend", "--failed-since", "2000-01-01T00:00", "--channel", "email")
    assert str(mail["id"]) in out and "1 notification(s) will be sent again" in out, "the erased one is not resent"
    again = (await notify.notifications(id=mail["id"]))[0]
    assert (again["status"], again["attempts"]) == ("pending", 1)
    assert again["retry_window_from"] > mail["retry_window_from"], "a new retry window"

    server, controller = relay
    use_smtp(notify, controller.port)
    assert await notify.worker().deliver_due() == 1
    assert [r.message_id for r in server.received] == [f"<{mail['id']}@signal-to-support.example.nl>"]
    assert (await notify.notifications(id=mail["id"]))[0]["status"] == "delivered"
    assert "nothing to resend" in await asyncio.to_thread(cli, notify, "resend", "--id", str(mail["id"]))


async def test_configuring_a_lease_shorter_than_a_send_is_refused(notify: Notify) -> None:
    with pytest.raises(ValueError, match="NOTIFY_DELIVERY_LEASE_SECONDS"):
        configure(notify, delivery_lease_seconds=10, smtp_timeout=8)
