"""Delivery channels and how their failures are classified.

A channel raises ``PermanentDeliveryError`` when retrying cannot help (a refused address,
a rejected request), ``ChannelUnavailable`` when the channel itself is down or misconfigured
(connection refused, timeouts, a relay refusing our login, a gateway answering 401/404/5xx:
it opens the channel's circuit breaker and the message is retried), and anything else for a
transient failure of one message, which the delivery worker retries with backoff. This module
holds the e-mail channels: ``SmtpChannel`` (aiosmtplib over a small pool of persistent
connections, STARTTLS or implicit TLS, optional login) and ``MailboxChannel``, a file drop of
``.eml`` files used when no SMTP host is configured."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib
import httpx

from services.notify.config import NotifySettings
from services.notify.domain import Notification


class PermanentDeliveryError(Exception):
    """Retrying will not help (e.g. an invalid address)."""


class ChannelUnavailable(Exception):
    """The channel itself is down or misconfigured: no message can get through it now."""


def channel_fault(exc: BaseException) -> bool:
    """Whether a failure says the channel, not the message, is the problem."""
    # OSError covers refused and reset connections and timeouts.
    return isinstance(exc, ChannelUnavailable | OSError | httpx.TransportError)


class Channel(Protocol):
    async def send(self, message: Notification) -> None: ...

    async def close(self) -> None: ...


# Bodies quoted-printable (readable in the raw message), headers RFC 2047 when not ASCII.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = _UTF8.header_encoding = QP


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, _UTF8)


def _text(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(body, _UTF8)
    return part


def email_message(message: Notification, sender: str) -> Message:
    """A multipart/alternative mail: the plain-text part first, the HTML part when there is one.

    Built with the compat32 MIME classes: the default policy's ``EmailMessage`` parses every
    header it is given; building and flattening a mail took 4.2 ms with it and 3.0 ms without
    (the development machine, under load), and mail was the largest share of notify's CPU."""
    to = message.address or ""
    if "@" not in to:
        raise PermanentDeliveryError("the recipient is not an e-mail address")  # not echoed: personal data
    name, address = parseaddr(sender)
    text = _text(message.body_text, "plain")
    mail: Message = text
    if message.body_html:
        mail = MIMEMultipart("alternative")
        mail.attach(text)
        mail.attach(_text(message.body_html, "html"))
    mail["From"] = formataddr((name, address), _UTF8)
    mail["To"] = to
    mail["Subject"] = _header(message.subject)  # type: ignore[assignment]  # compat32 takes a Header
    mail["Date"] = format_datetime(datetime.now(UTC))
    # Stable per notification: a retry after a lost answer is recognisable as the same mail.
    mail["Message-ID"] = f"<{message.id}@{address.rpartition('@')[2] or 'signal-to-support.local'}>"
    # Machine-sent: no out-of-office replies or auto-forwards back to us (RFC 3834).
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail["Content-Language"] = message.language
    return mail


def smtp_failure_is_permanent(exc: Exception) -> bool:
    """A 5xx answer to the recipient or to the message itself is final for that message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= r.code < 600 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPDataError) and 500 <= exc.code < 600


def _smtp_failure_is_the_messages(exc: Exception) -> bool:
    """Refused recipients or content (4xx or 5xx): the relay works, the connection is reusable
    (aiosmtplib resets the envelope). Anything else says the relay is down or refuses us."""
    return isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPDataError)


class SmtpChannel:
    """Sends over at most ``delivery_concurrency`` persistent connections, kept open between
    messages: a burst of mail does not open a connection (and a TLS handshake and a login)
    per message. A connection idle for a while is checked with NOOP before it is used; one
    that broke is dropped and a new one opened."""

    # Relays close idle connections after a few minutes (RFC 5321 suggests 5): past this
    # idle time a NOOP tells whether the connection is still there.
    CHECK_AFTER_IDLE_SECONDS = 10.0

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(max(1, settings.delivery_concurrency))
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_use_tls,
            timeout=s.smtp_timeout,
            cert_bundle=str(s.smtp_cert_bundle) if s.smtp_cert_bundle else None,
        )

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            smtp, idle_since = self._idle.pop()
            if not smtp.is_connected:
                smtp.close()
                continue
            if time.monotonic() - idle_since > self.CHECK_AFTER_IDLE_SECONDS:
                try:
                    await smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
                    continue
            return smtp
        smtp = self._client()
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            raise
        return smtp

    async def send(self, message: Notification) -> None:
        mail = email_message(message, self.settings.sender)
        async with self._slots:
            try:
                smtp = await self._checkout()
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise ChannelUnavailable(f"SMTP relay: {exc}") from exc
            try:
                await smtp.send_message(mail)
            except aiosmtplib.SMTPException as exc:
                if not _smtp_failure_is_the_messages(exc):
                    smtp.close()
                    raise ChannelUnavailable(f"SMTP relay: {exc}") from exc
                self._idle.append((smtp, time.monotonic()))
                if smtp_failure_is_permanent(exc):
                    raise PermanentDeliveryError(f"SMTP refused: {exc}") from exc
                raise
            except BaseException:
                # Cut off mid-conversation (cancelled, a socket error): the connection's
                # state is unknown, so it is not reused.
                smtp.close()
                raise
            self._idle.append((smtp, time.monotonic()))

    async def close(self) -> None:
        """QUIT the idle connections, all at once and briefly: this runs within the shutdown grace."""
        idle, self._idle = self._idle, []

        async def quit(smtp: aiosmtplib.SMTP) -> None:
            try:
                await asyncio.wait_for(smtp.quit(), 1)
            except Exception:  # closing anyway; the relay drops the session
                smtp.close()

        await asyncio.gather(*(quit(smtp) for smtp, _ in idle))


class MailboxChannel:
    """One RFC 5322 ``.eml`` file per message, named by the notification id, so a repeated
    delivery overwrites rather than duplicates."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def _write(self, message: Notification) -> None:
        mail = email_message(message, self.sender)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{message.id}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, target)

    async def send(self, message: Notification) -> None:
        await asyncio.to_thread(self._write, message)

    async def close(self) -> None:
        pass


def email_channel(settings: NotifySettings) -> Channel:
    if settings.smtp_host:
        return SmtpChannel(settings)
    return MailboxChannel(settings.mailbox_dir, settings.sender)


def check_http_answer(status_code: int, what: str) -> None:
    """2xx is delivered. 401, 403 and 404 mean our credentials or the URL are wrong, and 408,
    429 and 5xx that the other side is down or overloaded: the channel is unavailable (its
    breaker counts it, the message is retried). Any other 4xx refuses this message: final."""
    if 200 <= status_code < 300:
        return
    if status_code in (401, 403, 404, 408, 429) or status_code >= 500:
        raise ChannelUnavailable(f"{what} answered {status_code}")
    raise PermanentDeliveryError(f"{what} answered {status_code}")
