"""SMS through a gateway. ``SmsGateway`` is what notify needs from any provider;
``HttpSmsGateway`` posts JSON to a URL with a bearer token, which most gateways accept
directly or through a small adapter:

    POST <NOTIFY_SMS_URL>   Authorization: Bearer <NOTIFY_SMS_TOKEN>
    {"to": "+31612345678", "text": "...", "reference": "<notification id>"}

2xx is sent; 4xx (but 408/429) is permanent; 5xx, 408, 429 and timeouts are retried."""

from __future__ import annotations

import re
from typing import Protocol

import httpx

from services.notify.channels import Outgoing, PermanentDeliveryError, check_http_answer

_PHONE = re.compile(r"^\+?[0-9]{8,15}$")


class SmsGateway(Protocol):
    async def send(self, to: str, text: str, reference: str) -> None: ...


class HttpSmsGateway:
    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    async def send(self, to: str, text: str, reference: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.post(self.url, json={"to": to, "text": text, "reference": reference},
                                         headers=headers)
        check_http_answer(response.status_code, "the SMS gateway")


class SmsChannel:
    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    async def send(self, message: Outgoing) -> None:
        number = re.sub(r"[\s\-().]", "", message.to)
        if not _PHONE.match(number):
            raise PermanentDeliveryError(f"not a phone number: {message.to!r}")
        await self.gateway.send(number, message.body_text, message.notification_id)
