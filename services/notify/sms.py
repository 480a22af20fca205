"""SMS through a gateway. ``SmsGateway`` is what notify needs from any provider;
``HttpSmsGateway`` posts JSON to a URL with a bearer token, which most gateways accept
directly or through a small adapter:

    POST <NOTIFY_SMS_URL>   Authorization: Bearer <NOTIFY_SMS_TOKEN>
    {"to": "+31612345678", "text": "...", "reference": "<notification id>"}

2xx is sent. 401, 403 and 404 (a wrong token or URL), 408, 429, 5xx and timeouts say the
gateway is unusable: they count towards the SMS channel's circuit breaker, so a broken
gateway pauses SMS instead of failing the messages one by one, and are retried. Any other
4xx refuses the message. ``reference`` is the notification id, the same on every retry:
a gateway that supports it can drop a repeated message."""

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

    async def close(self) -> None:
        pass
