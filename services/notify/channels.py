"""Delivery channels and how their failures are classified.

A channel raises ``PermanentDeliveryError`` when retrying cannot help (a refused address,
a 4xx from a gateway) and anything else for a transient failure, which the delivery
worker retries with backoff. This module holds the e-mail channels: ``SmtpChannel``
(aiosmtplib, STARTTLS or implicit TLS, optional login) and ``MailboxChannel``, a file drop
of ``.eml`` files used when no SMTP host is configured."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from services.notify.config import NotifySettings


class PermanentDeliveryError(Exception):
    """Retrying will not help (e.g. an invalid address)."""


@dataclass(frozen=True)
class Outgoing:
    notification_id: str
    to: str
    subject: str
    body_text: str
    language: str
    body_html: str | None = None
    # The referrer's webhook secret (webhook channel only).
    secret: str | None = None
    kind: str = ""  # the template, e.g. for a webhook's event type header


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None: ...


def email_message(message: Outgoing, sender: str) -> EmailMessage:
    """A multipart/alternative mail: the plain-text part first, the HTML part when there is one."""
    if "@" not in message.to:
        raise PermanentDeliveryError(f"not an e-mail address: {message.to!r}")
    domain = parseaddr(sender)[1].rpartition("@")[2] or "signal-to-support.local"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    # Stable per notification: a retry after a lost answer is recognisable as the same mail.
    mail["Message-ID"] = f"<{message.notification_id}@{domain}>"
    # Machine-sent: no out-of-office replies or auto-forwards back to us (RFC 3834).
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(message.body_text)
    if message.body_html:
        mail.add_alternative(message.body_html, subtype="html")
    # After the content: setting the content drops every Content-* header.
    mail["Content-Language"] = message.language
    return mail


def smtp_failure_is_permanent(exc: Exception) -> bool:
    """5xx answers are permanent; 4xx answers, timeouts and lost connections are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= r.code < 600 for r in exc.recipients)
    code = getattr(exc, "code", None)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and code is not None and 500 <= code < 600


class SmtpChannel:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                email_message(message, s.sender), hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls, use_tls=s.smtp_use_tls, timeout=s.smtp_timeout,
                cert_bundle=str(s.smtp_cert_bundle) if s.smtp_cert_bundle else None,
            )
        except aiosmtplib.SMTPException as exc:
            if smtp_failure_is_permanent(exc):
                raise PermanentDeliveryError(f"SMTP refused: {exc}") from exc
            raise


class MailboxChannel:
    """One RFC 5322 ``.eml`` file per message, named by the notification id, so a repeated
    delivery overwrites rather than duplicates."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def _write(self, message: Outgoing) -> None:
        mail = email_message(message, self.sender)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{message.notification_id}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, target)

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._write, message)


def email_channel(settings: NotifySettings) -> Channel:
    if settings.smtp_host:
        return SmtpChannel(settings)
    return MailboxChannel(settings.mailbox_dir, settings.sender)


def check_http_answer(status_code: int, what: str) -> None:
    """2xx is delivered; 408, 429 and 5xx are worth another try; any other 4xx is not."""
    if 200 <= status_code < 300:
        return
    if 400 <= status_code < 500 and status_code not in (408, 429):
        raise PermanentDeliveryError(f"{what} answered {status_code}")
    raise ConnectionError(f"{what} answered {status_code}")
