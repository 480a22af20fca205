"""Delivery through real channels: a real SMTP server (the stack's aiosmtpd mailbox, and one
with STARTTLS and login), a real HTTP webhook receiver that verifies the signature, and an
HTTP SMS gateway; transient failures are retried with backoff, permanent ones are final, and
a channel that refuses everything (a wrong login, a gateway answering 401) is retried and
counted by its circuit breaker rather than failing messages one by one."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from deploy.mailbox import Mailbox, Maildrop
from deploy.stack import free_port
from services.notify.api import delivery_channels
from services.notify.repository import Contacts
from shared.contracts import EventType
from shared.webhooks import verify as verify_webhook
from tests.integration.test_notify_closed_loop import Notify, notify  # noqa: F401 (fixture)
from tests.unit.test_notify_domain import match, proposed

pytestmark = pytest.mark.integration


def read_mail(directory: Path) -> list[EmailMessage]:
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(directory.glob("*.eml"))]


def to(mails: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in mails if m["To"] == address]


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    box = Mailbox(tmp_path / "mailbox", "127.0.0.1", free_port(), free_port())
    box.start()
    yield box
    box.stop()


def configure(notify: Notify, **overrides: Any) -> None:
    """Change the settings the worker reads (validated, as from the environment)."""
    settings = notify.ctx.settings
    object.__setattr__(notify.ctx, "settings", type(settings)(**{**settings.model_dump(), **overrides}))


def use_smtp(notify: Notify, port: int, **overrides: Any) -> None:
    # The local mailbox speaks plain SMTP: STARTTLS (the default) is turned off unless a test asks.
    configure(notify, smtp_host="127.0.0.1", smtp_port=port, **{"smtp_starttls": False, **overrides})


async def test_mail_reaches_a_real_smtp_server_with_headers_language_and_a_plain_text_part(
    notify: Notify,
    mailbox: Mailbox,
) -> None:
    use_smtp(notify, mailbox.smtp.port)
    event = proposed(matches=[match("a")], caregiver={"preferred_language": "en"})
    async with notify.pool.acquire() as conn:
        await Contacts(conn).upsert_partner(
            event.signal.organisation_id, "GP De Linde", "gp@delinde.example.nl", None, None, "nl"
        )
    await notify.on_matches(event)
    assert await notify.worker().deliver_due() == 3
    mails = read_mail(mailbox.directory)
    assert len(mails) == 3

    caregiver = to(mails, "anna.devries@example.nl")[0]
    assert caregiver["Subject"] == "Support for you as a caregiver"
    assert caregiver["Content-Language"] == "en" and caregiver["Auto-Submitted"] == "auto-generated"
    assert caregiver["From"] == "Signaal naar Steun <noreply@signal-to-support.example.nl>"
    assert caregiver["Message-ID"].endswith("@signal-to-support.example.nl>") and caregiver["Date"]
    assert caregiver.get_content_type() == "multipart/alternative"
    plain, rich = caregiver.get_body(("plain",)), caregiver.get_body(("html",))
    assert plain.get_content().startswith("Dear Anna de Vries") and "Mantelzorgcafé a" in plain.get_content()
    assert '<html lang="en">' in rich.get_content()
    assert [p.get_content_type() for p in caregiver.iter_parts()] == ["text/plain", "text/html"]

    referrer = to(mails, "gp@delinde.example.nl")[0]
    assert referrer["Content-Language"] == "nl" and "steun voorgesteld" in referrer["Subject"]
    assert "anna" not in referrer.get_body(("plain",)).get_content().lower(), "the referrer gets no caregiver details"
    provider = to(mails, "a@provider.example.nl")[0]
    body = provider.get_body(("plain",)).get_content()
    assert "http://notify.test/r/" in body and "Anna de Vries" in body
    assert 'href="http://notify.test/r/' in provider.get_body(("html",)).get_content()

    sent = await notify.events(EventType.NOTIFICATION_SENT)
    assert sorted((s["recipient_role"], s["channel"], s["status"]) for s in sent) == [
        ("caregiver", "email", "delivered"),
        ("provider", "email", "delivered"),
        ("referrer", "email", "delivered"),
    ]
    assert notify.metric("sts_notifications_total", channel="email", outcome="delivered") == 3
    assert await notify.worker().deliver_due() == 0, "delivered once, never again"
    assert len(read_mail(mailbox.directory)) == 3


async def test_do_not_contact_sends_the_caregiver_nothing_but_the_referrer_mail(
    notify: Notify,
    mailbox: Mailbox,
) -> None:
    use_smtp(notify, mailbox.smtp.port)
    event = proposed(matches=[match("a")], caregiver={"contact_preference": "do_not_contact"})
    async with notify.pool.acquire() as conn:
        await Contacts(conn).upsert_partner(
            event.signal.organisation_id, "GP", "gp@delinde.example.nl", None, None, "nl"
        )
    await notify.on_matches(event)
    await notify.worker().deliver_due()
    mails = read_mail(mailbox.directory)
    assert [m["To"] for m in mails] == ["gp@delinde.example.nl"]
    assert "niet door ons benaderd (caregiver asked not to be contacted)" in mails[0].get_body(("plain",)).get_content()


# --- SMTP with STARTTLS and login, and its failures ------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"notify", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[Controller]:
    """An SMTP relay as production would have: STARTTLS required, login required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    controller = Controller(
        Maildrop(tmp_path / "relay"),
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=_login,
        auth_require_tls=True,
    )
    controller.start()
    yield controller
    controller.stop()


async def test_starttls_and_login_when_configured(
    notify: Notify,
    relay: Controller,
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    use_smtp(
        notify,
        relay.port,
        smtp_starttls=True,
        smtp_username="notify",
        smtp_password="s3cret",
        smtp_cert_bundle=certificate[0],
    )
    event = proposed(matches=[])
    await notify.on_matches(event)
    await notify.worker().deliver_due()
    assert [m["To"] for m in read_mail(tmp_path / "relay")] == ["anna.devries@example.nl"]

    # A relay that refuses us (no STARTTLS, a wrong password) refuses every message: the channel
    # is unusable, not the message. It is retried, and its breaker counts it.
    use_smtp(notify, relay.port, smtp_starttls=False, smtp_username=None, smtp_password=None)
    await notify.on_matches(proposed(matches=[], caregiver={"email": "plain@example.nl"}))
    worker = notify.worker()
    await worker.deliver_due()
    refused = (await notify.notifications(address="plain@example.nl"))[0]
    assert (refused["status"], refused["attempts"]) == ("pending", 1) and "530" in refused["last_error"]

    use_smtp(
        notify,
        relay.port,
        smtp_starttls=True,
        smtp_username="notify",
        smtp_password="wrong",
        smtp_cert_bundle=certificate[0],
        delivery_breaker_failures=2,
    )
    await notify.on_matches(proposed(matches=[], caregiver={"email": "wrong@example.nl"}))
    worker = notify.worker()
    assert await worker.deliver_due() == 3, "the new mail and status-view entry, and the mail refused before"
    wrong = (await notify.notifications(address="wrong@example.nl"))[0]
    assert (wrong["status"], wrong["attempts"]) == ("pending", 1) and "535" in wrong["last_error"]
    assert worker.breaker_states == {"email": "open"}, "two messages refused by the relay: e-mail is paused"
    attempts = [r["attempts"] for r in await notify.notifications(channel="email", status="pending")]
    assert await worker.deliver_due() == 0
    assert [r["attempts"] for r in await notify.notifications(channel="email", status="pending")] == attempts, (
        "no attempts are burned while the breaker is open"
    )


class Refusing:
    """An SMTP server that answers every recipient with one fixed reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return self.reply


@pytest.mark.parametrize("reply,permanent", [("550 5.1.1 no such user", True), ("451 4.3.0 try again later", False)])
async def test_smtp_5xx_is_permanent_and_4xx_is_retried(notify: Notify, reply: str, permanent: bool) -> None:
    server = Controller(Refusing(reply), hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        use_smtp(notify, server.port)
        await notify.on_matches(proposed(matches=[]))
        await notify.worker().deliver_due()
    finally:
        server.stop()
    row = (await notify.notifications(recipient_role="caregiver"))[0]
    assert (row["status"], row["attempts"]) == (("failed", 1) if permanent else ("pending", 1))
    assert reply.split()[0] in row["last_error"]


async def test_a_transient_failure_is_retried_with_growing_backoff_then_fails_after_the_window(
    notify: Notify,
) -> None:
    closed = free_port()  # nothing listens here: connection refused, a transient failure
    use_smtp(notify, closed, delivery_backoff_seconds=60, delivery_max_backoff_seconds=150)
    await notify.on_matches(proposed(matches=[]))
    worker = notify.worker()
    assert await worker.deliver_due() == 2  # the caregiver's mail and the referrer's status-view entry
    row = (await notify.notifications(recipient_role="caregiver"))[0]
    assert (row["status"], row["attempts"], row["lease_until"]) == ("pending", 1, None)
    assert await worker.deliver_due() == 0, "not due before the backoff has passed"

    waits = []
    for attempt in (2, 3, 4):
        await notify.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE status = 'pending'")
        before = await notify.pool.fetchval("SELECT now()")
        assert await worker.deliver_due() == 1
        row = (await notify.notifications(recipient_role="caregiver"))[0]
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        waits.append(round((row["next_attempt_at"] - before).total_seconds()))
    assert waits == [120, 150, 150], "doubling, capped"

    # A day later (the retry window) the next failure is final.
    await notify.pool.execute("""UPDATE notifications SET next_attempt_at = now(),
                                     retry_window_from = now() - interval '24 hours' WHERE status = 'pending'""")
    assert await worker.deliver_due() == 1
    final = (await notify.notifications(recipient_role="caregiver"))[0]
    assert (final["status"], final["attempts"]) == ("failed", 5) and final["failed_at"] is not None
    assert "gave up after 5 attempts" in final["last_error"]
    failed = [s for s in await notify.events(EventType.NOTIFICATION_SENT) if s["status"] == "failed"]
    assert [(f["recipient_role"], f["template"]) for f in failed] == [("caregiver", "caregiver_proposals")]
    assert failed[0]["detail"], "the status view says why"
    assert notify.metric("sts_notifications_total", channel="email", outcome="retry") == 4
    assert notify.metric("sts_notifications_total", channel="email", outcome="failed") == 1


# --- webhooks and SMS over real HTTP ---------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server that records requests and answers with the queued status codes."""

    answers: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "received": time.time()})
                self.send_response(receiver.answers.pop(0) if receiver.answers else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    assert r.server
    r.server.shutdown()


async def test_a_partner_webhook_is_signed_and_verifiable(notify: Notify, receiver: Receiver) -> None:
    event = proposed(matches=[match("a")], caregiver={"contact_preference": "do_not_contact"})
    async with notify.pool.acquire() as conn:
        await Contacts(conn).upsert_partner(
            event.signal.organisation_id, "GP", None, receiver.url, "partner-secret", "en"
        )
    receiver.answers = [503]
    await notify.on_matches(event)
    await notify.worker().deliver_due()
    assert len(receiver.requests) == 1
    pending = (await notify.notifications(recipient_role="referrer"))[0]
    assert (pending["channel"], pending["status"], pending["attempts"]) == ("webhook", "pending", 1)
    await notify.worker().deliver_due()
    assert len(receiver.requests) == 2

    for request in receiver.requests:
        headers = request["headers"]
        assert verify_webhook("partner-secret", headers["X-Signature"], request["body"], now=request["received"])
        assert not verify_webhook("another-secret", headers["X-Signature"], request["body"], now=request["received"])
        assert not verify_webhook(
            "partner-secret", headers["X-Signature"], request["body"] + b"x", now=request["received"]
        )
        assert headers["X-Delivery-Id"] == str(pending["id"]) and headers["X-Event-Type"] == "referrer_update"
    document = json.loads(receiver.requests[-1]["body"])
    assert document["type"] == "referrer_update" and document["signal_id"] == str(event.signal_id)
    assert document["language"] == "en" and document["data"]["caregiver_contacted"] is False
    assert document["data"]["proposals"] == [
        {"service_name": "Mantelzorgcafé a", "organization_name": "Welzijn Leusden", "consultant": False}
    ]
    assert (await notify.notifications(recipient_role="referrer"))[0]["status"] == "delivered"


async def test_a_webhook_answering_4xx_fails_at_once(notify: Notify, receiver: Receiver) -> None:
    event = proposed(matches=[])
    async with notify.pool.acquire() as conn:
        await Contacts(conn).upsert_partner(event.signal.organisation_id, "GP", None, receiver.url, "k", "nl")
    receiver.answers = [410]
    await notify.on_matches(event)
    await notify.worker().deliver_due()
    row = (await notify.notifications(recipient_role="referrer"))[0]
    assert (row["status"], row["attempts"]) == ("failed", 1) and "410" in row["last_error"]


@pytest.mark.parametrize("answer,outcome", [(202, "delivered"), (400, "failed"), (503, "pending"), (401, "pending")])
async def test_sms_goes_through_the_gateway(notify: Notify, receiver: Receiver, answer: int, outcome: str) -> None:
    configure(notify, sms_url=receiver.url, sms_token="gateway-token")
    receiver.answers = [answer]
    await notify.on_matches(proposed(matches=[match("a")], caregiver={"contact_preference": "sms"}))
    await notify.worker(delivery_channels(notify.ctx.settings)).deliver_due()
    request = receiver.requests[0]
    assert request["headers"]["Authorization"] == "Bearer gateway-token"
    sms = json.loads(request["body"])
    assert sms["to"] == "+31612345678" and "Mantelzorgcafé a" in sms["text"] and len(sms["text"]) <= 320
    assert (await notify.notifications(recipient_role="caregiver"))[0]["status"] == outcome
