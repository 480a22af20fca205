"""Delivery channels. ``MailboxChannel`` is the local sink: one RFC 5322 ``.eml`` file per
message, named by the notification id so a repeated delivery overwrites, never duplicates."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class PermanentDeliveryError(Exception):
    """Retrying will not help (e.g. an invalid address)."""


@dataclass(frozen=True)
class Outgoing:
    notification_id: str
    to: str
    subject: str
    body_text: str
    language: str


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None: ...


class MailboxChannel:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def _write(self, message: Outgoing) -> None:
        if "@" not in message.to:
            raise PermanentDeliveryError(f"not an e-mail address: {message.to!r}")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = make_msgid(idstring=message.notification_id, domain="signal-to-support.local")
        mail["Content-Language"] = message.language
        mail.set_content(message.body_text)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{message.notification_id}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, target)

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._write, message)
